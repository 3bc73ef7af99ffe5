"""meshgate: governed training data from a data mesh.

>>> import meshgate
>>> client = meshgate.connect("grpc://localhost:50051", username="sam", password="...")
>>> ts = client.training_set(products="sales.lineitem", purpose="ml_training",
...                          splits={"train": 0.9, "test": 0.1}, split_key="l_orderkey")
>>> manifest = ts.plan()
>>> manifest.save("model/manifest.json")
>>> loader = torch.utils.data.DataLoader(manifest.to_torch("train", batch_size=512),
...                                      batch_size=None, num_workers=4)

Later, the same rows again (or a clear error naming what changed):

>>> again = meshgate.from_manifest(client, "model/manifest.json")
"""

from .client import Client, connect
from .errors import ManifestTampered, MeshgateError, SnapshotChanged
from .manifest import Manifest, Shard, from_manifest
from .splits import split_hash
from .training import TrainingSet

__version__ = "0.1.0"

__all__ = [
    "Client",
    "connect",
    "MeshgateError",
    "ManifestTampered",
    "SnapshotChanged",
    "Manifest",
    "Shard",
    "from_manifest",
    "split_hash",
    "TrainingSet",
]
