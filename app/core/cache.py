"""A bounded LRU of rendered grids (or whole responses), limited by total bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable


class ByteLRU:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int | None = None) -> None:
        """Keep `value` (bytes, or anything whose size in bytes is `nbytes`), evicting the least recently used."""
        size = len(value) if nbytes is None else nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._size -= evicted

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._items)
