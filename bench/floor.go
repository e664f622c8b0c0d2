// Command floor makes, as a compiled program, the bare system calls a correct go_processes row
// needs (bench_go_processes.py's _floor, call for call), so the benchmark can tell a goal that
// faster Python could meet from one that no scanner reading /proc afresh on every query can meet.
//
// Usage: floor RUNS NEEDS COLD PIDS
// NEEDS is a comma-separated subset of cgroup,namespaces,uid,path,agent; COLD is 0 or 1; PIDS is
// the Go processes' pids, comma-separated. Prints the median seconds of RUNS passes.
package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	runs, err := strconv.Atoi(os.Args[1])
	if err != nil || runs < 1 {
		fmt.Fprintln(os.Stderr, "usage: floor RUNS NEEDS COLD PIDS")
		os.Exit(2)
	}
	needs := map[string]bool{}
	for _, n := range strings.Split(os.Args[2], ",") {
		needs[n] = true
	}
	cold := os.Args[3] == "1"
	gos := map[string]bool{}
	for _, p := range strings.Split(os.Args[4], ",") {
		gos[p] = true
	}
	files := []string{"stat"}
	if needs["cgroup"] {
		files = append(files, "cgroup")
	}
	if needs["uid"] {
		files = append(files, "status")
	}
	if cold {
		files = append(files, "environ")
	}
	times := make([]float64, 0, runs)
	for i := 0; i < runs; i++ {
		start := time.Now()
		pass(gos, needs, cold, files)
		times = append(times, time.Since(start).Seconds())
	}
	sort.Float64s(times)
	fmt.Println(times[len(times)/2])
}

func pass(gos, needs map[string]bool, cold bool, files []string) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var st syscall.Stat_t
	buf := make([]byte, 16384)
	link := make([]byte, 4096)
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		base := "/proc/" + name
		if syscall.Stat(base+"/exe", &st) != nil || !gos[name] {
			continue
		}
		for _, f := range files {
			fd, err := syscall.Open(base+"/"+f, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				continue
			}
			syscall.Read(fd, buf)
			syscall.Close(fd)
		}
		if needs["path"] {
			syscall.Readlink(base+"/exe", link)
		}
		if needs["namespaces"] {
			syscall.Readlink(base+"/ns/mnt", link)
			if cold {
				syscall.Readlink(base+"/ns/pid", link)
			}
		}
		if needs["agent"] {
			syscall.Lstat("/root/.config/gops/"+name, &st)
		}
		if cold {
			if fd, err := syscall.Open(base+"/exe", syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
				syscall.Fstat(fd, &st)
				syscall.Pread(fd, buf[:4096], 0)
				syscall.Close(fd)
			}
		}
		syscall.Stat(base+"/exe", &st)
	}
}
