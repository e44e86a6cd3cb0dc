"""Object storage for export files and shuffle buckets: the port and its S3 adapter."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def open(self, key: str) -> IO[bytes]:
        """The object as a stream, read as it arrives (an export file is not held whole)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Keys under `prefix`, in key order."""
        ...

    def delete_prefix(self, prefix: str) -> int: ...


class S3ObjectStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put(self, key: str, body: bytes) -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body)

    def get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()

    def open(self, key: str) -> IO[bytes]:
        # botocore's StreamingBody reads from the connection as asked: read(n), iteration, close.
        return cast(IO[bytes], self._client.get_object(Bucket=self._bucket, Key=key)["Body"])

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        ):
            keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": [{"Key": k} for k in chunk]})
        return len(keys)
