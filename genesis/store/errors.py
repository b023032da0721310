"""What the event store raises to its callers."""


class ConcurrencyError(Exception):
    """``expected_version`` did not match the aggregate's stored version."""


class InvalidEventError(Exception):
    """The events do not apply to the aggregate (illegal transition, inconsistent data)."""


class StorageError(Exception):
    """The database refused the commit (locked, read-only, disk full...). Nothing was written."""


class LeaseLostError(StorageError):
    """The commit's fencing check failed: this daemon no longer holds the lease of the account
    (expired, or claimed by another daemon). Nothing was written; stop working the account."""


class CommitOutcomeUnknownError(StorageError):
    """The connection was lost while the commit was in flight and the database could not be
    asked in time whether it committed (PostgreSQL, ``genesis.store.pg_commit_outcome``): the
    events may or may not be stored. Neither act on them as durable (never send an order whose
    intent this is) nor as refused (never append them again blindly): read the aggregate from
    the store once it answers (``genesis.engine.durable_append``)."""


class StoreClosedError(Exception):
    """The store is not running."""


class StoreIdentityError(Exception):
    """The database has no usable client order id namespace (``store_identity``)."""
