"""`serve --compile-cache-dir DIR`: Inductor keeps the compiled decode steps in DIR while serving."""
from torch._inductor.runtime.cache_dir_utils import cache_dir

from model_runtime.server.cli import compile_cache


def test_compiled_steps_go_to_the_compile_cache_dir_while_serving(tmp_path):
    before = cache_dir()
    with compile_cache(str(tmp_path / "inductor")):
        assert cache_dir() == str((tmp_path / "inductor").resolve())
    assert cache_dir() == before  # restored once serving ends
    with compile_cache(None):  # no --compile-cache-dir: Inductor's own default
        assert cache_dir() == before
