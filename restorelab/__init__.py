"""restorelab: the package behind the deep image restoration course.

Every chapter of the book imports from here; notebooks explain the code, they never copy it.
Modules: ``io`` (image files <-> tensors), ``color`` (RGB <-> YCbCr), ``degrade`` (damage models),
``data`` (datasets), ``models`` (architectures + registry), ``losses``, ``metrics``, ``train``
(the Trainer), ``tasks`` (degradation + model input + evaluation for each restoration task),
``infer`` (whole-image inference), ``viz`` (figures), ``labs`` (lab generation), ``cli``.
"""

__version__ = "0.1.0"
