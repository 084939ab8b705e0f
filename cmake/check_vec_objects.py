"""ctest check (cpu_vec_objects_share_no_isa_code): no code built for AVX2 or AVX-512 can be
reached through a shared weak symbol from code that runs on any x86-64 CPU.

The vectorized kernels (csrc/cpu/vec/*.cpp) are compiled once per instruction set
(cmake/LowbitCpuKernels.cmake). Their own functions live in lowbit::cpu::vec::<ISA> and at::vec's
inline namespace <ISA>, so their names differ per build. But an inline function or template of
c10, ATen or the standard library that the compiler did not inline is emitted as a weak symbol
in every object that uses it, and the linker keeps the first copy it meets for every caller in
the library. The kernel objects link before the library's own objects (CMake puts
$<TARGET_OBJECTS> sources first), DEFAULT before AVX2 before AVX512, so the copy kept is the first
one among the kernel objects in that order. The failure this check catches: a weak function whose
kept copy comes from an AVX2 or AVX512 object while an object built for a lower instruction set
(the library's own objects, DEFAULT, or AVX2 under AVX512) defines or calls it: that caller would
run AVX instructions on a CPU that may lack them.

Usage: check_vec_objects.py NM --baseline OBJ... --DEFAULT OBJ... --AVX2 OBJ... --AVX512 OBJ...
(each group may be one ;-separated argument, or empty).
"""
import subprocess
import sys

LEVELS = ["baseline", "DEFAULT", "AVX2", "AVX512"]
RANK = {"baseline": 0, "DEFAULT": 0, "AVX2": 1, "AVX512": 2}  # instruction set level


def symbols(nm, obj):
    """(weak functions defined, symbols referenced) of one object, mangled."""
    out = subprocess.run([nm, obj], check=True, capture_output=True, text=True).stdout
    weak, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "W":
            weak.add(parts[2])
        elif len(parts) == 2 and parts[0] in ("U", "w"):
            undefined.add(parts[1])
    return weak, undefined


def main(argv):
    nm, groups, current = argv[0], {level: [] for level in LEVELS}, None
    for arg in argv[1:]:
        for a in arg.split(";"):  # CMake passes each group as one ;-list
            if a.startswith("--") and a[2:] in groups:
                current = a[2:]
            elif a:
                groups[current].append(a)
    in_isa_groups = {o for level in LEVELS[1:] for o in groups[level]}
    groups["baseline"] = [o for o in groups["baseline"] if o not in in_isa_groups]
    if not groups["AVX2"] and not groups["AVX512"]:
        print("no AVX2 / AVX512 kernel objects in this build: nothing to check")
        return 0
    first = {}  # weak function -> (rank, object) of the copy the linker keeps
    used = {}   # symbol -> lowest rank of an object defining or calling it
    for level in ["DEFAULT", "AVX2", "AVX512", "baseline"]:  # link order
        for obj in groups[level]:
            weak, undefined = symbols(nm, obj)
            for s in weak:
                first.setdefault(s, (RANK[level], obj))
            for s in weak | undefined:
                used[s] = min(used.get(s, RANK[level]), RANK[level])
    bad = [(s, obj) for s, (rank, obj) in first.items() if rank > 0 and used[s] < rank]
    n_isa = sum(1 for rank, _ in first.values() if rank > 0)
    if bad:
        names = [s for s, _ in bad]
        try:  # demangled where binutils' c++filt is at hand
            names = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                                   check=True).stdout.splitlines() or names
        except (OSError, subprocess.CalledProcessError):
            pass
        print("weak functions whose kept copy is AVX2/AVX512 code but which lower-ISA code calls:")
        for name, (_, obj) in zip(names, bad):
            print(f"  {name}\n    first defined by {obj}")
        print("make them inline-only in csrc/cpu/vec (or keep them out of those files)")
        return 1
    n = sum(len(g) for g in groups.values())
    print(f"{n} objects: {len(first)} weak functions, {n_isa} first defined by AVX2/AVX512 objects, "
          "none of those reachable from baseline code")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
