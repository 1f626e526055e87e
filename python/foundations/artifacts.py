"""foundations.artifacts, where Atlas's documentation puts syncable directories:
foundations.artifacts.create_syncable_directory(key, directory_path=None, source_job_id=None)."""
from ._syncable import SyncableDirectory, create_syncable_directory

__all__ = ["SyncableDirectory", "create_syncable_directory"]
