"""The Python peer of `vitlab-cli bench data`: torchvision's ImageFolder + DataLoader."""
import json
import sys
import time

import torch
import torchvision.transforms as T
from torchvision.datasets import ImageFolder

root, size, batch, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
transform = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                       T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
start = time.perf_counter()
dataset = ImageFolder(root, transform=transform)
loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2)
results = []
for epoch in range(1, epochs + 1):
    if epoch > 1:
        start = time.perf_counter()
    images = sum(len(labels) for _, labels in loader)
    results.append({"epoch": epoch, "images_per_s": images / (time.perf_counter() - start)})
print(json.dumps({"epochs": results}))
