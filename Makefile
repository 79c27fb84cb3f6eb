# litestream: build, test, release.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.Version=$(VERSION)
BIN     := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export CGO_ENABLED ?= 0

VERSITYGW_VERSION   := v1.8.0
STATICCHECK_VERSION := v0.8.2

.PHONY: build install test test-short tools lint clean

## build: the litestream binary in ./bin
build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/litestream ./cmd/litestream

## install: go install the binary
install:
	go install -trimpath -ldflags "$(LDFLAGS)" ./cmd/litestream

## tools: test tools (the versitygw S3 server, staticcheck) into ./bin
tools: $(BIN)/versitygw $(BIN)/staticcheck

$(BIN)/versitygw:
	GOBIN=$(BIN) CGO_ENABLED=0 go install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(BIN)/staticcheck:
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet, staticcheck
lint: $(BIN)/staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	go vet ./...
	staticcheck ./...

## test: everything: tools, lint, and every test with the race detector
test: tools lint
	CGO_ENABLED=1 VERSITYGW=$(BIN)/versitygw go test -race -timeout 40m ./...

clean:
	rm -rf $(BIN)
