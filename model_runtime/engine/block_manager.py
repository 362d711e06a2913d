"""BlockManager: fixed-size KV blocks with reference counts and hash-based prefix caching.

A block becomes shareable once its tokens *and the token after it* are known and computed: the
MTP layer's cache entry at a block's last position depends on that next token, so it is part of
the block's hash (parent hash, block tokens, next token). A hash match is a hit only when the
block's own identity (parent block, tokens, next token) equals the lookup's: a 64-bit collision
never hands one prompt another's cache. Freed blocks keep their identity and stay reusable until
they are handed out again (least recently freed first).
"""
from __future__ import annotations

from collections import OrderedDict

import xxhash


def block_hash(parent: int | None, tokens: list[int], next_token: int) -> int:
    h = xxhash.xxh64()
    h.update(str(parent).encode())
    h.update(",".join(map(str, tokens)).encode())
    h.update(f"|{next_token}".encode())
    return h.intdigest()


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True):
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self.ref_count = [0] * num_blocks
        self.hash_of: list[int | None] = [None] * num_blocks
        self.identity_of: list[tuple | None] = [None] * num_blocks  # (parent block, tokens, next token)
        self.block_of_hash: dict[int, int] = {}
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))
        self.queried_tokens = 0  # prompt tokens looked up in the prefix cache (per admission attempt)
        self.hit_tokens = 0  # of those, tokens found in cached blocks

    @property
    def num_free(self) -> int:
        return len(self.free)

    @property
    def num_used(self) -> int:
        return self.num_blocks - len(self.free)

    def blocks_needed(self, block_table: list[int], num_tokens: int) -> int:
        return max(0, -(-num_tokens // self.block_size) - len(block_table))

    def _take_free(self) -> int:
        block, _ = self.free.popitem(last=False)
        old = self.hash_of[block]
        if old is not None:  # evict its cached identity
            self.block_of_hash.pop(old, None)
            self.hash_of[block] = self.identity_of[block] = None
        self.ref_count[block] = 1
        return block

    def match_prefix(self, token_ids: list[int]) -> tuple[list[int], list[int]]:
        """Longest chain of cached blocks for this token sequence -> (blocks, their hashes)."""
        blocks, hashes, parent = [], [], None
        if not self.enable_prefix_caching:
            return blocks, hashes
        bs = self.block_size
        for i in range(len(token_ids) // bs):
            if (i + 1) * bs >= len(token_ids):
                break  # the next token must be known too
            tokens, next_token = token_ids[i * bs : (i + 1) * bs], token_ids[(i + 1) * bs]
            h = block_hash(parent, tokens, next_token)
            block = self.block_of_hash.get(h)
            if block is None or self.identity_of[block] != (blocks[-1] if blocks else None, tuple(tokens), next_token):
                break
            blocks.append(block)
            hashes.append(h)
            parent = h
        self.queried_tokens += len(token_ids)
        self.hit_tokens += len(blocks) * bs
        return blocks, hashes

    def acquire(self, blocks: list[int]) -> None:
        """Take a reference on cached blocks (from match_prefix)."""
        for block in blocks:
            if self.ref_count[block] == 0:
                del self.free[block]
            self.ref_count[block] += 1

    def grow(self, block_table: list[int], num_tokens: int) -> bool:
        """Append blocks so the table covers num_tokens positions; False (nothing taken) if short."""
        need = self.blocks_needed(block_table, num_tokens)
        if need > len(self.free):
            return False
        block_table.extend(self._take_free() for _ in range(need))
        return True

    def register(self, block_table: list[int], block_hashes: list[int], token_ids: list[int], num_computed: int) -> None:
        """Publish newly complete blocks (computed, next token known) for prefix reuse."""
        if not self.enable_prefix_caching:
            return
        bs = self.block_size
        parent = block_hashes[-1] if block_hashes else None
        i = len(block_hashes)
        while (i + 1) * bs <= num_computed and (i + 1) * bs < len(token_ids) and i < len(block_table):
            tokens, next_token = token_ids[i * bs : (i + 1) * bs], token_ids[(i + 1) * bs]
            h = block_hash(parent, tokens, next_token)
            block = block_table[i]
            if h not in self.block_of_hash and self.hash_of[block] is None:
                self.block_of_hash[h] = block
                self.hash_of[block] = h
                self.identity_of[block] = (block_table[i - 1] if i else None, tuple(tokens), next_token)
            block_hashes.append(h)
            parent, i = h, i + 1

    def release(self, block_table: list[int]) -> None:
        """Drop a sequence's references; unreferenced blocks go back to the free list."""
        for block in reversed(block_table):
            self.ref_count[block] -= 1
            if self.ref_count[block] == 0:
                self.free[block] = None
        block_table.clear()
