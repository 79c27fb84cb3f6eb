//go:build windows

package main

// defaultConfigPath is the config file read when neither -config nor
// $LITESTREAM_CONFIG names one: v0.3's Windows default.
const defaultConfigPath = `C:\Litestream\litestream.yml`
