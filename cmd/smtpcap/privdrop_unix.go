//go:build unix

package main

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"
)

// lookupUser returns the uid, the primary gid and every group of a user.
func lookupUser(name string) (uid, gid int, groups []int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		if u, err = user.LookupId(name); err != nil {
			return 0, 0, nil, fmt.Errorf("no user %q", name)
		}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, nil, fmt.Errorf("user %q: uid %q gid %q are not numbers", name, u.Uid, u.Gid)
	}
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			groups = append(groups, n)
		}
	}
	return uid, gid, groups, nil
}

// dropPrivileges becomes the user, with its groups, as tcpdump -Z does:
// groups first, then the gid, then the uid (after which neither can
// change). Go applies each to every thread of the process (Linux, since
// Go 1.16). The open capture handles and files stay usable.
func dropPrivileges(name string) error {
	uid, gid, groups, err := lookupUser(name)
	if err != nil {
		return err
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if syscall.Getuid() != uid || syscall.Geteuid() != uid {
		return fmt.Errorf("still uid %d after setuid %d", syscall.Geteuid(), uid)
	}
	if uid != 0 && syscall.Setuid(0) == nil {
		return fmt.Errorf("setuid(0) still works after dropping to uid %d", uid)
	}
	return nil
}
