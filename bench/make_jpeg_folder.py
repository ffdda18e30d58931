"""Writes a benchmark image folder: CLASSES sub-folders of IMAGES JPEGs of about 300 px each."""
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw

root, classes, per_class = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(0)
for c in range(classes):
    folder = root / f"class_{c:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
        width, height = rng.randint(260, 340), rng.randint(260, 340)
        image = Image.new("RGB", (width, height), tuple(rng.randint(0, 255) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            box = sorted(rng.randint(0, width) for _ in range(2)), sorted(rng.randint(0, height) for _ in range(2))
            draw.ellipse([box[0][0], box[1][0], box[0][1], box[1][1]], fill=tuple(rng.randint(0, 255) for _ in range(3)))
        image.save(folder / f"{i:04d}.jpg", quality=90)
