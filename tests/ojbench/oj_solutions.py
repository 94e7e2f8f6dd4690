"""Hand-written submissions for the fixture problems, in C++ and Python, one per verdict.

`SUBMISSIONS[(problem, language, name)] = (source, expected final verdict)`. The fixture
problems (tests/ojbench/fixtures/OJBench_testdata):
- NOI/loj-1001: pairs (i < j <= n) with i + j divisible by 3; 8 cases, the last with
  n ~ 1e9, where only the O(1) formula finishes (so the slow solutions pass the 1/8, 1/4
  and 1/2 scales and fail in full).
- NOI/loj-1002: big output, n lines holding i mod 10 (8 MB on the last case; cases in a zip).
- ICPC/pairsum: any a <= b with a + b = n, judged by a C++ bridged checker.
- ICPC/broken_checker: its checker raises, so every submission is an internal error.
"""

from __future__ import annotations

from pathlib import Path

FIXTURE_DATA = Path(__file__).parent / "fixtures" / "OJBench_testdata"

PAIRS_CPP = r"""
#include <cstdio>
int main() {
    long long n; std::scanf("%lld", &n);
    long long c0 = n / 3, c1 = (n + 2) / 3, c2 = (n + 1) / 3;
    std::printf("%lld\n", c0 * (c0 - 1) / 2 + c1 * c2);
}
"""
PAIRS_PY = """
def main():
    n = int(input())
    c0, c1, c2 = n // 3, (n + 2) // 3, (n + 1) // 3
    print(c0 * (c0 - 1) // 2 + c1 * c2)

main()
"""
PAIRS_SLOW_CPP = r"""
#include <cstdio>
int main() {
    long long n, count = 0; std::scanf("%lld", &n);
    for (long long i = 1; i <= n; ++i)
        for (long long j = i + 1; j <= n; ++j)
            if ((i + j) % 3 == 0) ++count;
    std::printf("%lld\n", count);
}
"""
PAIRS_SLOW_PY = """
n = int(input())
count = 0
for i in range(1, n + 1):
    for j in range(i + 1, n + 1):
        if (i + j) % 3 == 0:
            count += 1
print(count)
"""
PAIRS_WRONG_CPP = r"""
#include <cstdio>
int main() { long long n; std::scanf("%lld", &n); std::printf("%lld\n", n * (n - 1) / 6); }
"""
PAIRS_WRONG_PY = "n = int(input())\nprint(n * (n - 1) // 6)\n"
MLE_CPP = r"""
#include <cstdio>
#include <cstring>
int main() {  // right on small n; on the big case, touches 1 MiB blocks past 1 GiB
    long long n, total = 0; std::scanf("%lld", &n);
    while (n > 100000) { char *p = new char[1 << 20]; std::memset(p, 1, 1 << 20); total += p[n % 7]; }
    long long c0 = n / 3, c1 = (n + 2) / 3, c2 = (n + 1) / 3;
    std::printf("%lld\n", c0 * (c0 - 1) / 2 + c1 * c2 + total);
}
"""
MLE_PY = """
n = int(input())
blocks = []
while n > 100000:
    blocks.append(bytearray(1 << 20))
    blocks[-1][::4096] = b"x" * 256
c0, c1, c2 = n // 3, (n + 2) // 3, (n + 1) // 3
print(c0 * (c0 - 1) // 2 + c1 * c2)
"""
RTE_CPP = r"""
#include <cstdio>
#include <cstdlib>
int main() { long long n; std::scanf("%lld", &n); if (n > 0) std::abort(); std::printf("0\n"); }
"""
RTE_PY = "n = int(input())\nraise ValueError(n)\n"
CE_CPP = "int main() { return undeclared_name; }\n"
CE_PY = "def main(:\n    print(1)\n"
OLE_CPP = r"""
#include <cstdio>
int main() { for (;;) std::fputs("0123456789012345678901234567890123456789\n", stdout); }
"""
OLE_PY = """
import sys
line = "0123456789" * 100 + "\\n"
while True:
    sys.stdout.write(line)
"""
BIG_CPP = r"""
#include <cstdio>
int main() {
    int n; std::scanf("%d", &n);
    for (int i = 1; i <= n; ++i) { std::putchar('0' + i % 10); std::putchar('\n'); }
}
"""
BIG_PY = """
import sys
n = int(input())
sys.stdout.write("".join("%d\\n" % (i % 10) for i in range(1, n + 1)))
"""
BIG_WRONG_PY = """
n = int(input())
print("\\n".join(str(i % 10) for i in range(1, min(n, 3999999) + 1)))
"""
PAIRSUM_CPP = r"""
#include <cstdio>
int main() { long long n; std::scanf("%lld", &n); std::printf("%lld %lld\n", n / 2, n - n / 2); }
"""
PAIRSUM_PY = "n = int(input())\nprint(n // 2, n - n // 2)\n"
PAIRSUM_WRONG_CPP = r"""
#include <cstdio>
int main() { long long n; std::scanf("%lld", &n); std::printf("0 %lld\n", n); }
"""
PAIRSUM_WRONG_PY = "n = int(input())\nprint(n, 0)\n"
ECHO_CPP = r"""
#include <cstdio>
int main() { int n; std::scanf("%d", &n); std::printf("%d\n", n); }
"""
ECHO_PY = "print(int(input()))\n"

SUBMISSIONS: dict[tuple[str, str, str], tuple[str, str]] = {
    ("loj-1001", "cpp", "fast"): (PAIRS_CPP, "AC"),
    ("loj-1001", "python", "fast"): (PAIRS_PY, "AC"),
    ("loj-1001", "cpp", "slow"): (PAIRS_SLOW_CPP, "TLE"),
    ("loj-1001", "python", "slow"): (PAIRS_SLOW_PY, "TLE"),
    ("loj-1001", "cpp", "wrong"): (PAIRS_WRONG_CPP, "WA"),
    ("loj-1001", "python", "wrong"): (PAIRS_WRONG_PY, "WA"),
    ("loj-1001", "cpp", "memory"): (MLE_CPP, "MLE"),
    ("loj-1001", "python", "memory"): (MLE_PY, "MLE"),
    ("loj-1001", "cpp", "crash"): (RTE_CPP, "RTE"),
    ("loj-1001", "python", "crash"): (RTE_PY, "IR"),
    ("loj-1001", "cpp", "syntax"): (CE_CPP, "CE"),
    ("loj-1001", "python", "syntax"): (CE_PY, "CE"),
    ("loj-1002", "cpp", "flood"): (OLE_CPP, "OLE"),
    ("loj-1002", "python", "flood"): (OLE_PY, "OLE"),
    ("loj-1002", "cpp", "right"): (BIG_CPP, "AC"),
    ("loj-1002", "python", "right"): (BIG_PY, "AC"),
    ("loj-1002", "python", "short"): (BIG_WRONG_PY, "WA"),
    ("pairsum", "cpp", "right"): (PAIRSUM_CPP, "AC"),
    ("pairsum", "python", "right"): (PAIRSUM_PY, "AC"),
    ("pairsum", "cpp", "wrong"): (PAIRSUM_WRONG_CPP, "WA"),
    ("pairsum", "python", "wrong"): (PAIRSUM_WRONG_PY, "WA"),
    ("broken_checker", "cpp", "echo"): (ECHO_CPP, "IE"),
    ("broken_checker", "python", "echo"): (ECHO_PY, "IE"),
}


def fenced(source: str, language: str) -> str:
    """A model reply in the format OJBench's prompts ask for."""
    return f"Here is my solution.\n\n```{language}\n{source.strip()}\n```\n"
