import torch

from restorelab.models.dncnn import DnCNN
from restorelab.tasks.denoise import Denoising, Direct


def _clean(n=1, c=3, s=64):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, c, s, s, generator=g) * 0.6 + 0.2


def test_noise_statistics_and_no_clip():
    task = Denoising(sigma=25, channels="rgb")
    clean = torch.full((4, 3, 64, 64), 0.02)
    noisy, target = task.make_pair(clean, torch.Generator().manual_seed(0))
    d = noisy - target
    assert abs(d.std().item() - 25 / 255) < 0.003 and abs(d.mean().item()) < 0.003
    assert noisy.min() < 0  # no clipping


def test_grey_channels_and_fixed_seed_eval_noise():
    task = Denoising(sigma=25)
    img = _clean()[0]
    a, b = task.degrade(img, 3), task.degrade(img, 3)
    assert a.shape[0] == 1 and torch.equal(a, b)
    assert not torch.equal(a, task.degrade(img, 4))


def test_the_evaluation_noise_is_add_gaussian_noise_which_passes_the_lab_check():
    from restorelab.checks.ch03 import check_gaussian_noise
    from restorelab.degrade import add_gaussian_noise

    task = Denoising(sigma=25, channels="rgb")
    img = _clean()[0]
    expected = add_gaussian_noise(img, 25, torch.Generator().manual_seed(task.seed + 3))
    assert torch.equal(task.degrade(img, 3), expected)
    assert check_gaussian_noise(add_gaussian_noise)


def test_baseline_psnr_sigma25():
    task = Denoising(sigma=25, channels="rgb")
    scores = task.evaluate(None, [_clean(s=128)[0]])
    assert 19.9 < scores["psnr"][0] < 20.5
    assert set(scores) == {"psnr", "ssim"}


def test_tiny_training_lowers_loss_residual_and_direct():
    for wrap in (False, True):
        torch.manual_seed(0)
        net = DnCNN(1, 1, depth=4, features=16)
        model = Direct(net) if wrap else net
        task = Denoising(sigma=25)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        g = torch.Generator().manual_seed(0)
        losses = []
        for _ in range(30):
            noisy, clean = task.make_pair(_clean(4, 3, 32), g)
            loss = torch.nn.functional.mse_loss(model(noisy), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) < sum(losses[:5])
