"""What the event store raises to its callers."""


class ConcurrencyError(Exception):
    """``expected_version`` did not match the aggregate's stored version."""


class InvalidEventError(Exception):
    """The events do not apply to the aggregate (illegal transition, inconsistent data)."""


class StorageError(Exception):
    """The database refused the commit (locked, read-only, disk full...). Nothing was written."""


class StoreClosedError(Exception):
    """The store is not running."""


class StoreIdentityError(Exception):
    """The database has no usable client order id namespace (``store_identity``)."""
