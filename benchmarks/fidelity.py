"""Fidelity at the seed's settings: train pairs (i, i) of the sample pack for 10,000 epochs at lr 1e-3
and print the un-mixed images' PSNR and SSIM beside the seed's table.

    python benchmarks/fidelity.py [--pairs 8] [--epochs 10000]
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ae_core import Experiment, load_pair  # noqa: E402
from ae_core.reporting import SEED_RESULTS  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--pairs", type=int, default=8)
parser.add_argument("--epochs", type=int, default=10_000)
args = parser.parse_args()
rows = []
for i in range(args.pairs):
    experiment = Experiment(*load_pair("sample", i, i))
    experiment.train(args.epochs)
    q = experiment.result().quality
    rows.append((q["mnist"].psnr, q["mnist"].ssim, q["cifar"].ssim))
    print(f"pair ({i}, {i}): PSNR {rows[-1][0]:.2f} dB  SSIM MNIST {rows[-1][1]:.4f}  SSIM CIFAR-10 {rows[-1][2]:.4f}",
          flush=True)
psnr, ssim_m, ssim_c = (statistics.mean(column) for column in zip(*rows))
print(f"mean over {len(rows)} pairs: PSNR {psnr:.2f} dB (seed {SEED_RESULTS['mnist']['psnr_db']}), "
      f"SSIM MNIST {ssim_m:.4f} (seed {SEED_RESULTS['mnist']['ssim']}), "
      f"SSIM CIFAR-10 {ssim_c:.4f} (seed {SEED_RESULTS['cifar']['ssim']})")
