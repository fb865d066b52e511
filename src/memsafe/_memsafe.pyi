"""Type stubs for the C core of memsafe (``memsafe._memsafe``)."""

from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Literal, TypedDict, TypeVar, final, overload

from typing_extensions import Buffer, Self

_T = TypeVar("_T")
_S = TypeVar("_S", bound="SecretStr")

LockPolicy = Literal["strict", "warn", "off"]
Storage = Literal["guarded", "sealed"]
SecretMem = Literal["off", "prefer", "require"]
ForkPolicy = Literal["wipe", "inherit"]

class LockError(OSError):
    """Secret memory could not be locked in RAM under the 'strict' policy."""

class LockWarning(RuntimeWarning):
    """A secret could not be locked in RAM under the 'warn' policy."""

class PlaintextWarning(RuntimeWarning):
    """plaintext() left its bytes/str intact because a reference was kept."""

@final
class Window:
    """A read or write window on a secret; use it in a ``with`` statement."""

    __hash__: None  # type: ignore[assignment]
    def __enter__(self) -> memoryview: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

_P = TypeVar("_P", bytes, str)

@final
class Plaintext(Generic[_P]):
    """The with-form of plaintext(): the block receives a fresh copy that is
    wiped when it ends (unless a reference to it was kept)."""

    __hash__: None  # type: ignore[assignment]
    def __enter__(self) -> _P: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

class Secret:
    """Base of MemSafe, SecretBytes and SecretStr (not instantiable)."""

    __hash__: None  # type: ignore[assignment]
    @property
    def closed(self) -> bool: ...
    @property
    def locked(self) -> bool: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def fork(self) -> ForkPolicy: ...
    @property
    def secretmem(self) -> bool: ...
    @overload
    def read(self, fn: None = None, /) -> Window: ...
    @overload
    def read(self, fn: Callable[[memoryview], _T], /) -> _T: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: Any, /) -> Self: ...
    def _region_info(self) -> dict[str, Any]: ...
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any, /) -> Any: ...
    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any, /) -> Any: ...

class _BytesPlaintext(Secret):
    @overload
    def plaintext(self, fn: None = None, /) -> Plaintext[bytes]: ...
    @overload
    def plaintext(self, fn: Callable[[bytes], _T], /) -> _T: ...

class MemSafe(_BytesPlaintext):
    """A mutable secret buffer."""

    def __init__(
        self,
        data: int | Buffer | Secret = 0,
        /,
        *,
        wipe_source: bool = False,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> None: ...
    @overload
    def write(self, fn: None = None, /) -> Window: ...
    @overload
    def write(self, fn: Callable[[memoryview], _T], /) -> _T: ...
    def extend(self, data: Buffer | Secret, /) -> None: ...

class SecretBytes(_BytesPlaintext):
    """Immutable secret bytes."""

    def __init__(
        self,
        data: Buffer | Secret = b"",
        /,
        *,
        wipe_source: bool = False,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> None: ...
    @classmethod
    def random(
        cls,
        n: int,
        /,
        *,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> Self: ...
    @classmethod
    def from_fd(
        cls,
        fd: int,
        size: int | None = None,
        *,
        max_size: int | None = 1048576,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
        strip_newline: bool = False,
    ) -> Self: ...
    @classmethod
    def from_file(
        cls,
        path: str | bytes | Any,
        /,
        *,
        max_size: int | None = 1048576,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
        strip_newline: bool = False,
    ) -> Self: ...
    @classmethod
    def from_writer(
        cls,
        size: int,
        fn: Callable[[memoryview], int | None],
        *,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> Self: ...
    def reveal(self) -> bytes: ...

class SecretStr(Secret):
    """Secret text, stored as UTF-8."""

    def __init__(
        self,
        text: str | SecretStr = "",
        /,
        *,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> None: ...
    @property
    def nbytes(self) -> int: ...
    @classmethod
    def getpass(
        cls,
        prompt: str = "Password: ",
        *,
        max_size: int | None = 65536,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> Self: ...
    @classmethod
    def from_writer(
        cls,
        size: int,
        fn: Callable[[memoryview], int | None],
        *,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
    ) -> Self: ...
    @classmethod
    def from_fd(
        cls,
        fd: int,
        size: int | None = None,
        *,
        max_size: int | None = 1048576,
        storage: Storage | None = None,
        fork: ForkPolicy | None = None,
        strip_newline: bool = False,
    ) -> Self: ...
    def append(self, text: str | SecretStr, /) -> None: ...
    def reveal(self) -> str: ...
    @overload
    def plaintext(self, fn: None = None, /) -> Plaintext[str]: ...
    @overload
    def plaintext(self, fn: Callable[[str], _T], /) -> _T: ...

def compare_digest(a: Buffer | Secret, b: Buffer | Secret, /) -> bool: ...
def set_lock_policy(policy: LockPolicy, /) -> None: ...
def get_lock_policy() -> LockPolicy: ...
def set_default_storage(storage: Storage, /) -> None: ...
def get_default_storage() -> Storage: ...
def set_secretmem(mode: SecretMem, /) -> None: ...
def get_secretmem() -> SecretMem: ...
def set_fork_policy(policy: ForkPolicy, /) -> None: ...
def get_fork_policy() -> ForkPolicy: ...
def purge() -> None: ...
def purge_on_signals() -> int: ...
def _features() -> dict[str, Any]: ...

_main_interpreter: bool
_process_setup: bool
def _stats() -> dict[str, Any]: ...

class HardenBefore(TypedDict):
    """Each measure's state before the harden() call, as the OS reports it:
    True (in effect), False (not), or a str "unknown: ..." (not readable)."""

    not_dumpable: bool | str
    deny_attach: bool | str
    core_limit_zero: bool | str
    process_dacl: bool | str
    no_crash_dialog: bool | str
    wer_no_heap: bool | str
    remote_debug_veto: bool | str

class HardenReport(TypedDict):
    """What harden() did (see docs/hardening.md): True = applied, a str =
    not applied and why; what was in effect before, what it applied now."""

    not_dumpable: Literal[True] | str
    deny_attach: Literal[True] | str
    core_limit_zero: Literal[True] | str
    process_dacl: Literal[True] | str
    no_crash_dialog: Literal[True] | str
    wer_no_heap: Literal[True] | str
    remote_debug_veto: Literal[True] | str
    debugger_attached: bool | int | str
    already: HardenBefore
    applied_now: list[str]

def harden() -> HardenReport: ...
def _chacha20poly1305_seal(
    key: Buffer, nonce: Buffer, ad: Buffer, plaintext: Buffer, /
) -> bytes: ...
def _chacha20poly1305_open(
    key: Buffer, nonce: Buffer, ad: Buffer, data: Buffer, /
) -> bytes: ...
def _secretstr_from_utf8(cls: type[_S], data: Buffer | Secret, /) -> _S: ...
