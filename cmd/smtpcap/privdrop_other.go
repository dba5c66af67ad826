//go:build !unix

package main

import "errors"

func lookupUser(string) (int, int, []int, error) {
	return 0, 0, nil, errors.New("-Z is not supported on this system")
}

func dropPrivileges(string) error { return errors.New("-Z is not supported on this system") }
