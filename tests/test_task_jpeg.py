import io

import pytest
import torch
import torch.nn.functional as F

from restorelab import models
from restorelab.data import RandomPatches, embedded_photos
from restorelab.degrade import luma_quantisation_table
from restorelab.tasks.jpeg import JPEGArtifacts, blocking_effect_factor, psnr_b
from restorelab.train import TrainConfig, Trainer


def test_make_pair_shapes_and_values():
    task = JPEGArtifacts(quality=10)
    clean = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    degraded, target = task.make_pair(clean)
    assert degraded.shape == target.shape == (4, 1, 32, 32)
    assert task.model_channels == 1
    assert torch.allclose(degraded * 255, (degraded * 255).round(), atol=1e-4)
    grey = torch.rand(2, 1, 16, 16)
    assert task.make_pair(grey)[1] is grey


def test_jpeg_input_psnr_rises_with_quality():
    image = embedded_photos("val")[0]
    psnrs = [JPEGArtifacts(quality=q).evaluate(None, [image])["psnr"][0] for q in (10, 30, 70)]
    assert psnrs[0] < psnrs[1] < psnrs[2]
    assert 20 < psnrs[0] < 40


def test_psnr_b_penalises_blocking():
    clean = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)).mul(0.1).add(0.5)
    blocky = clean.clone()
    blocky[..., ::8, :] += 0.2  # steps at block rows
    assert blocking_effect_factor(clean).item() == 0 or blocking_effect_factor(clean).item() < 1
    assert (
        blocking_effect_factor(
            F.avg_pool2d(blocky, 8).repeat_interleave(8, -1).repeat_interleave(8, -2)
        )
        > 0
    )
    jpeg10 = JPEGArtifacts(quality=10).degrade(clean[0])
    from restorelab import metrics

    assert psnr_b(jpeg10, clean[0]) <= metrics.psnr(jpeg10, clean[0]) + 1e-9


def test_evaluate_baseline_and_short_training_lowers_loss():
    torch.manual_seed(0)
    task = JPEGArtifacts(quality=10)
    model = models.build("arcnn")
    assert models.count_params(model) == 106_561
    trainer = Trainer(
        model,
        RandomPatches(embedded_photos("train"), 32),
        F.mse_loss,
        TrainConfig(steps=30, batch_size=8, lr=5e-4, val_every=1000, log_every=1),
        make_pair=task.make_pair,
    )
    history = trainer.fit()
    losses = [row["loss"] for row in history if "loss" in row]
    assert len(losses) >= 10
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    scores = task.evaluate(None, embedded_photos("val"))
    assert set(scores) == {"psnr", "ssim", "psnr_b"}
    assert all(0.5 < s < 1 for s in scores["ssim"])


@pytest.mark.parametrize("quality", [1, 10, 37, 50, 90, 100])
def test_quantisation_table_is_the_one_the_course_codec_writes(quality):
    """The table of chapter 2's figure and lab is what torchvision's encoder puts in the file."""
    from PIL import Image
    from torchvision.io import encode_jpeg

    pixels = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8)
    data = encode_jpeg(pixels, quality=quality)
    written = Image.open(io.BytesIO(data.numpy().tobytes())).quantization[0]
    assert torch.equal(luma_quantisation_table(quality), torch.tensor(written).reshape(8, 8))


def test_quantisation_table_rejects_a_bad_quality():
    with pytest.raises(ValueError, match="quality"):
        luma_quantisation_table(0)


# the DnCNN paper's JPEG rows on Classic5 (Y/grey PSNR, and SSIM at q10/q20)
PAPER_CLASSIC5_JPEG = {
    10: (27.82, 0.7595),
    20: (30.12, 0.8344),
    30: (31.48, None),
    40: (32.43, None),
}


@pytest.mark.parametrize("quality", sorted(PAPER_CLASSIC5_JPEG))
def test_classic5_jpeg_input_matches_the_papers_table(datasets_dir, quality):
    """Same codec settings and conventions as the papers: the JPEG rows agree to 0.02 dB."""
    from restorelab.data import benchmark_images
    from restorelab.experiment import mean_scores

    images = [image for _, image in benchmark_images("Classic5")]
    scores = mean_scores(JPEGArtifacts(quality=quality).evaluate(None, images))
    psnr, ssim = PAPER_CLASSIC5_JPEG[quality]
    assert abs(scores["psnr"] - psnr) < 0.02
    if ssim is not None:
        assert abs(scores["ssim"] - ssim) < 0.002
