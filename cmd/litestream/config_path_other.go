//go:build !windows

package main

// defaultConfigPath is the config file read when neither -config nor
// $LITESTREAM_CONFIG names one.
const defaultConfigPath = "/etc/litestream.yml"
