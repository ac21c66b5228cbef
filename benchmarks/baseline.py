"""The plain-PyTorch baseline: FCN-8s VGG16 written out as pytorch-fcn (the port) does it --
conv1_1 padded by 100, ceil-mode pools, ConvTranspose upsampling, fixed crops 5, 9 and 31. Same
layer names and weight shapes as fcn-lit's Caffe-mode net, so ``import_torchfcn`` loads its
weights into fcn-lit and the benchmark checks both give the same logits before timing them."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class PlainFCN8s(nn.Module):
    def __init__(self, n_class: int = 21) -> None:
        super().__init__()
        convs = [(1, 2, 3, 64), (2, 2, 64, 128), (3, 3, 128, 256), (4, 3, 256, 512), (5, 3, 512, 512)]
        for block, count, cin, cout in convs:
            for i in range(1, count + 1):
                padding = 100 if (block, i) == (1, 1) else 1
                setattr(self, f"conv{block}_{i}", nn.Conv2d(cin if i == 1 else cout, cout, 3, padding=padding))
        self.fc6 = nn.Conv2d(512, 4096, 7)
        self.fc7 = nn.Conv2d(4096, 4096, 1)
        self.score_fr = nn.Conv2d(4096, n_class, 1)
        self.score_pool3 = nn.Conv2d(256, n_class, 1)
        self.score_pool4 = nn.Conv2d(512, n_class, 1)
        self.upscore2 = nn.ConvTranspose2d(n_class, n_class, 4, stride=2, bias=False)
        self.upscore8 = nn.ConvTranspose2d(n_class, n_class, 16, stride=8, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(n_class, n_class, 4, stride=2, bias=False)
        self.blocks = [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]

    def forward(self, x: Tensor) -> Tensor:
        h, pools = x, {}
        for block, count in self.blocks:
            for i in range(1, count + 1):
                h = torch.relu(getattr(self, f"conv{block}_{i}")(h))
            h = nn.functional.max_pool2d(h, 2, 2, ceil_mode=True)
            pools[block] = h
        h = nn.functional.dropout(torch.relu(self.fc6(h)), 0.5, self.training)
        h = nn.functional.dropout(torch.relu(self.fc7(h)), 0.5, self.training)
        upscore2 = self.upscore2(self.score_fr(h))
        score_pool4 = self.score_pool4(pools[4])[:, :, 5 : 5 + upscore2.size(2), 5 : 5 + upscore2.size(3)]
        upscore_pool4 = self.upscore_pool4(upscore2 + score_pool4)
        score_pool3 = self.score_pool3(pools[3])
        score_pool3 = score_pool3[:, :, 9 : 9 + upscore_pool4.size(2), 9 : 9 + upscore_pool4.size(3)]
        h = self.upscore8(upscore_pool4 + score_pool3)
        return h[:, :, 31 : 31 + x.size(2), 31 : 31 + x.size(3)].contiguous()
