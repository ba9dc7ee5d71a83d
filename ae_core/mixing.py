"""Mix two images with weight alpha and take each back out of a reconstruction of the mix.

mixed = alpha * mnist + (1 - alpha) * cifar, so given the other original,
mnist = (mixed - (1 - alpha) * cifar) / alpha. At alpha = 0.5 this is the seed's `2 * recon - other`.
"""

import math

SEED_ALPHA = 0.5


def check_alpha(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie strictly between 0 and 1 (got {alpha!r})")
    return float(alpha)


def mix(mnist, cifar, alpha: float = SEED_ALPHA):
    alpha = check_alpha(alpha)
    return alpha * mnist + (1.0 - alpha) * cifar


def unmix(reconstruction, mnist, cifar, alpha: float = SEED_ALPHA):
    """(un-mixed MNIST, un-mixed CIFAR-10), unclamped: their errors are what the metrics score."""
    alpha = check_alpha(alpha)
    return ((reconstruction - (1.0 - alpha) * cifar) / alpha, (reconstruction - alpha * mnist) / (1.0 - alpha))
