"""huggingface_hub's hf_hub_download, as Python's timm calls it: prints the cached file's path.
The endpoint, the cache and HF_HUB_OFFLINE come from the environment, as for timm."""
import sys

from huggingface_hub import hf_hub_download, try_to_load_from_cache

repository, filename = sys.argv[1], sys.argv[2]
path = hf_hub_download(repo_id=repository, filename=filename)
# The cache alone must agree with the download.
assert try_to_load_from_cache(repository, filename) == path, "try_to_load_from_cache disagrees"
print(path)
