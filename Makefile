# litestream: build, test, release.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)
BIN     := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export CGO_ENABLED ?= 0

VERSITYGW_VERSION   := v1.8.0
STATICCHECK_VERSION := v0.8.2
V03_VERSION         := v0.3.13
FAKE_GCS_VERSION    := v1.56.1
AZURITE_VERSION     := 3.35.0

DEB_VERSION := $(shell echo '$(VERSION)' | sed -e 's/^v//' -e 's/^\([^0-9]\)/0.0.0~\1/')
PLATFORMS   := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64

# The storage servers' binaries, for the tests that start them.
TEST_SERVERS := VERSITYGW=$(BIN)/versitygw FAKE_GCS_SERVER=$(BIN)/fake-gcs-server \
	AZURITE_BLOB=$(BIN)/azurite/node_modules/.bin/azurite-blob SSHD=/usr/sbin/sshd

.PHONY: build install test tools lint fuzz-short torture bench bench-quick release deb package-check clean

## build: the litestream binary in ./bin
build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/litestream ./cmd/litestream

## install: go install the binary
install:
	go install -trimpath -ldflags "$(LDFLAGS)" ./cmd/litestream

## tools: test tools into ./bin: the storage servers the backends are tested
## against (versitygw for S3, fake-gcs-server for GCS, Azurite for Azure
## Blob Storage, from npm), staticcheck, Litestream v0.3.13 for the
## compatibility test (it needs cgo and gcc); and from apt when missing, the
## application zoo's sqlite3 shell and python3, and OpenSSH's sshd for SFTP
tools: $(BIN)/versitygw $(BIN)/fake-gcs-server $(BIN)/azurite/node_modules/.bin/azurite-blob $(BIN)/staticcheck $(BIN)/v0.3/litestream
	command -v sqlite3 >/dev/null && command -v python3 >/dev/null && test -x /usr/sbin/sshd || \
		(apt-get update && apt-get install -y sqlite3 python3 openssh-server)

$(BIN)/fake-gcs-server:
	GOBIN=$(BIN) CGO_ENABLED=0 go install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)

$(BIN)/azurite/node_modules/.bin/azurite-blob:
	mkdir -p $(BIN)/azurite
	cd $(BIN)/azurite && npm install --no-audit --no-fund --loglevel=error azurite@$(AZURITE_VERSION)

$(BIN)/v0.3/litestream:
	GOBIN=$(BIN)/v0.3 CGO_ENABLED=1 go install github.com/benbjohnson/litestream/cmd/litestream@$(V03_VERSION)

$(BIN)/versitygw:
	GOBIN=$(BIN) CGO_ENABLED=0 go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet, staticcheck
lint: $(BIN)/staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...
	staticcheck ./...

## test: everything: tools, lint, every test with the race detector, short fuzzing
test: tools lint
	CGO_ENABLED=1 $(TEST_SERVERS) LITESTREAM_V03=$(BIN)/v0.3/litestream go test -race -count=1 -timeout 40m ./...
	scripts/fuzz.sh 100000x

## torture: the long reliability run: 1000 crash cycles, faults, hostile
## app, broken replicas, 600000 fuzz executions per target; prints FIGURE lines
torture: tools
	LITESTREAM_TORTURE_CYCLES=1000 VERSITYGW=$(BIN)/versitygw go test -count=1 -timeout 90m -v \
		-run 'TestCrashLoop|TestZoo|TestObjectStoreFaults|TestHostileApp|TestBrokenReplicas|TestFullDisk|TestLongReader|TestPageSizeChange' ./internal/e2e | tee $(BIN)/torture.log | grep -E '^(FIGURE|--- |ok|FAIL)'
	scripts/fuzz.sh 600000x | tee -a $(BIN)/torture.log

## bench: overhead, lag, restore speed, resources and cost against baselines (about 17 minutes on 2 cores)
bench: $(BIN)/versitygw
	go test -run '^$$' -bench . -benchtime 20x .
	go run ./internal/cmd/bench -o bench.json

## bench-quick: the same with small sizes, to check that it runs
bench-quick: $(BIN)/versitygw
	go run ./internal/cmd/bench -quick -o bench-quick.json

## release: cross-compile every platform into ./bin/dist, version stamped
release:
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$os/$$arch"; \
		GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" \
			-o $(BIN)/dist/litestream-$$os-$$arch$$ext ./cmd/litestream || exit 1; \
	done

$(BIN)/nfpm:
	GOBIN=$(BIN) go install github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.43.1

## deb: the Debian package (binary, systemd unit, sample config) in ./bin
deb: $(BIN)/nfpm
	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/litestream-linux-amd64 ./cmd/litestream
	GOARCH=amd64 VERSION=$(DEB_VERSION) nfpm package -f nfpm.yaml -p deb -t $(BIN)/litestream_$(DEB_VERSION)_amd64.deb

## package-check: cross-compiles build; the .deb holds the right files, installs, and runs (needs root)
package-check: release deb
	dpkg-deb -c $(BIN)/litestream_$(DEB_VERSION)_amd64.deb | tee $(BIN)/deb-contents.txt
	grep -q ' ./usr/bin/litestream$$' $(BIN)/deb-contents.txt
	grep -q ' ./lib/systemd/system/litestream.service$$' $(BIN)/deb-contents.txt
	grep -q ' ./etc/litestream.yml$$' $(BIN)/deb-contents.txt
	dpkg -i $(BIN)/litestream_$(DEB_VERSION)_amd64.deb
	/usr/bin/litestream version | grep -qF '$(VERSION)'
	@echo "package check passed: $(VERSION)"

clean:
	rm -rf $(BIN)
