"""The paper's classifiers (appendix A, Table 7) as plain nn.Modules.

Both take images in [0, 1] of shape (B, 1, 28, 28) and return logits; `features`
returns the penultimate activations (used as the in-domain FID feature network).
"""
import torch
from torch import nn


class PaperCNN(nn.Module):
    """Conv32-ReLU-Conv64-MaxPool-Dropout-FC128-ReLU-Dropout-FC (paper Table 7).

    No ReLU after the second conv, as in the original code. Dropout comes after the max-pool, as in
    the PyTorch MNIST example this network is taken from: dropout before a max-pool makes the
    train-mode and eval-mode outputs differ systematically (we measured 1.5 points of test accuracy
    lost in eval mode), which would also distort the confidences Bayes-TrEx samples against.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 1, hidden: int = 128):
        super().__init__()
        c1, c2 = 32 * width, 64 * width
        self.num_classes = num_classes
        self.num_features = hidden
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3), nn.ReLU(),
            nn.Conv2d(c1, c2, 3),
            nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
            nn.Linear(c2 * 12 * 12, hidden), nn.ReLU(), nn.Dropout(0.5),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class LeNet(nn.Module):
    """LeNet as used for domain adaptation (ADDA): Conv20-Pool-Conv50-Pool-FC500-FC."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, hidden: int = 500):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = hidden
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(50 * 4 * 4, hidden), nn.ReLU(),
        )
        self.head = nn.Linear(hidden, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLP(nn.Module):
    """A plain two-hidden-layer perceptron: a third architecture for the independent labeler ensemble
    (no convolutions, so its mistakes differ from the CNNs')."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, hidden: int = 512, size: int = 28):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = hidden // 2
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * size * size, hidden), nn.ReLU(),
                                  nn.Dropout(0.2), nn.Linear(hidden, hidden // 2), nn.ReLU())
        self.head = nn.Linear(hidden // 2, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
