"""Peak tensor memory counted per storage, and the attention scaling measurement of chapter 6."""

import torch

from restorelab.profiling import TensorMemory, attention_scaling, time_and_memory


def test_tensor_memory_counts_live_storages_once():
    with TensorMemory() as memory:
        a = torch.ones(1000)  # 4,000 bytes
        b = a * 2  # 8,000 live
        view = b.view(10, 100)  # a view: no new storage
        del a  # 4,000 live
        c = b + 1  # 8,000 live again
    assert memory.peak == 8000
    assert view.shape == (10, 100) and c.shape == (1000,)


def test_time_and_memory_of_a_matrix_product():
    x = torch.rand(64, 64)
    seconds, peak = time_and_memory(lambda: x @ x, repeats=2)
    assert seconds > 0 and peak == 64 * 64 * 4


def test_spatial_attention_grows_with_the_square_of_the_pixels_and_stops_at_the_limit():
    rows = attention_scaling((8, 16, 32), channels=8, limit_bytes=2 * 16**4 * 4)
    spatial = {r["side"]: r["bytes"] for r in rows if r["layer"].startswith("spatial")}
    channel = {r["side"]: r["bytes"] for r in rows if r["layer"].startswith("MDTA")}
    assert spatial[32] is None and set(channel) == {8, 16, 32}  # MDTA goes on
    assert spatial[16] / spatial[8] > 10  # ~16x: (HW)^2
    assert channel[16] / channel[8] < 5  # ~4x: HW
