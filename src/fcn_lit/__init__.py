"""fcn-lit: Fully Convolutional Networks for semantic segmentation with Lightning and Hydra."""

__version__ = "0.1.0"
