#!/usr/bin/env python3
"""torchvision/PIL equivalent of `cargo bench --bench pipeline`, for comparison on the same machine.

100x100 JPEG faces (RAF-DB's aligned size), RUL's training pipeline: PIL decode to RGB; with
p 0.5 one of {horizontal flip, Gaussian noise of variance 30} on the uint8 array; Resize((224, 224)),
ToTensor, Normalize(ImageNet), RandomErasing(scale=(0.02, 0.25)); batches of 64 from a DataLoader
with 1 and 2 worker processes; plus the evaluation pipeline (no augmentation). Prints img/s.

Needs: pip install torch torchvision pillow numpy
Usage: python3 scripts/bench_pipeline_torch.py [--images 1024] [--passes 3]
"""

import argparse
import os
import random
import tempfile
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

SIZE = 224
BATCH = 64


def add_noise(arr):
    """RUL's add_g: additive Gaussian noise of variance 30, clipped, truncated to uint8."""
    noisy = arr + np.random.normal(0.0, 30**0.5, arr.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def flip(arr):
    return np.ascontiguousarray(arr[:, ::-1])


class Faces(Dataset):
    def __init__(self, paths, augment):
        self.paths = paths
        self.augment = augment
        steps = [
            transforms.Resize((SIZE, SIZE)),
            transforms.ToTensor(),
            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
        if augment:
            steps.append(transforms.RandomErasing(scale=(0.02, 0.25)))
        self.transform = transforms.Compose(steps)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        image = Image.open(self.paths[i]).convert("RGB")
        if self.augment and random.uniform(0, 1) > 0.5:
            arr = np.asarray(image)
            arr = [flip, add_noise][random.randint(0, 1)](arr)
            image = Image.fromarray(arr)
        return self.transform(image), i % 7


def test_image(rng):
    """Smooth shading plus noise, as the Rust benchmark's images."""
    a, b = rng.uniform(0.5, 2.0, 2)
    x = np.arange(100)[None, :]
    y = np.arange(100)[:, None]
    base = 128 + 60 * (np.sin(x / 15 * a) + np.cos(y / 12 * b))
    v = np.clip(base + rng.uniform(-12, 12, (100, 100)), 0, 255).astype(np.uint8)
    return np.stack([v, np.clip(v.astype(int) - 20, 0, 255), np.clip(v.astype(int) - 40, 0, 255)], -1).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the main process (1 is fastest on small machines: "
                             "with more, batch collation contends with the workers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.images):
            path = os.path.join(tmp, f"img_{i:05}.jpg")
            Image.fromarray(test_image(rng)).save(path, quality=90)
            paths.append(path)
        print(f"torchvision {__import__('torchvision').__version__}, torch {torch.__version__}: "
              f"{args.images} 100x100 JPEGs -> {SIZE}x{SIZE}, batch {BATCH}, {args.passes} passes")
        for label, augment in [("train (augmented)", True), ("eval", False)]:
            for workers in [1, 2]:
                loader = DataLoader(Faces(paths, augment), batch_size=BATCH, num_workers=workers)
                start = time.perf_counter()
                images = 0
                for _ in range(args.passes):
                    for batch, _labels in loader:
                        images += batch.shape[0]
                secs = time.perf_counter() - start
                print(f"{label:>18}, {workers} worker(s): {images / secs:8.0f} img/s")


if __name__ == "__main__":
    main()
