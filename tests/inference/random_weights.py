"""Random weights for tests whose nets must predict more than one class."""

import torch


def randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random trainable filters, scaled by fan-in so activations stay near 1 (score layers start at
    zero, which would predict class 0 only); biases, norms and the bilinear upsampling stay."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.requires_grad and p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=generator) * p[0].numel() ** -0.5)
    return net
