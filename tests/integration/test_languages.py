"""Every language: accepted, wrong answer, and a compile (or syntax) error, in both backends."""

import pytest

from service.schema import Verdict
from tests.conftest import stdio

SUM = {
    "python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "cpp": "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
    "c": "#include <stdio.h>\nint main(){long a,b;scanf(\"%ld %ld\",&a,&b);"
         "printf(\"%ld\\n\",a+b);}\n",
    "javascript": "const [a,b]=require('fs').readFileSync(0,'utf8').trim().split(/\\s+/)"
                  ".map(Number);console.log(a+b);\n",
    "java": "import java.util.*;\npublic class Solution { public static void main(String[] x) {"
            " Scanner s = new Scanner(System.in); System.out.println(s.nextLong() + s.nextLong());"
            " } }\n",
    "rust": "use std::io::*;\nfn main(){let mut s=String::new();stdin().read_to_string(&mut s)"
            ".unwrap();let v:Vec<i64>=s.split_whitespace().map(|x|x.parse().unwrap()).collect();"
            "println!(\"{}\",v[0]+v[1]);}\n",
    "go": "package main\nimport \"fmt\"\nfunc main(){var a,b int64\nfmt.Scan(&a,&b)\n"
          "fmt.Println(a+b)}\n",
    "bash": "read a b\necho $((a + b))\n",
}
BROKEN = {
    "python": "def f(:\n",
    "cpp": "int main(){ return x; }\n",
    "c": "int main(){ return x; }\n",
    "javascript": "function (\n",
    "java": "public class Main { void f( }\n",
    "rust": "fn main(){ let x: i32 = \"s\"; }\n",
    "go": "package main\nfunc main(){ x := 1 }\n",
    "bash": "if then fi (\n",
}
COMPILED = {"cpp", "c", "java", "rust", "go"}
TESTS = [stdio("1 2\n", "3"), stdio("40 2\n", "42"), stdio("-5 5\n", "0")]


@pytest.mark.parametrize("language", sorted(SUM))
def test_accepted(run, language):
    res = run(language, SUM[language], TESTS)
    assert res.verdict == Verdict.accepted, res.feedback
    assert (res.passed, res.total) == (3, 3)
    assert res.compile.status == ("ok" if language in COMPILED else "skipped")


@pytest.mark.parametrize("language", sorted(SUM))
def test_wrong_answer(run, language):
    res = run(language, SUM[language], [stdio("1 2\n", "4"), stdio("2 2\n", "4")])
    assert [t.verdict for t in res.tests] == [Verdict.wrong_answer, Verdict.accepted]
    assert "Expected output '4' but got '3'" in res.feedback


@pytest.mark.parametrize("language", sorted(BROKEN))
def test_broken_program(run, language):
    res = run(language, BROKEN[language], TESTS)
    if language in COMPILED:
        assert res.verdict == Verdict.compile_error
        assert res.compile.status == "error" and res.compile.stderr
        assert res.feedback.startswith("Your code failed to compile:")
        assert all(t.verdict == Verdict.compile_error for t in res.tests)
    else:
        assert res.verdict == Verdict.runtime_error
        assert all(t.verdict == Verdict.runtime_error for t in res.tests)


def test_sql(run):
    setup = "CREATE TABLE t(id INTEGER, name TEXT); INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c');"
    tests = [{"type": "sql", "setup_sql": setup, "expected_rows": [[3, "c"], [2, "b"]],
              "ordered": True}]
    good = run("sql", "SELECT id, name FROM t WHERE id > 1 ORDER BY id DESC;", tests)
    assert good.verdict == Verdict.accepted, good.feedback
    wrong = run("sql", "SELECT id, name FROM t WHERE id > 1 ORDER BY id;", tests)
    assert wrong.verdict == Verdict.wrong_answer
    tests[0]["ordered"] = False
    assert run("sql", "SELECT id, name FROM t WHERE id > 1;", tests).verdict == Verdict.accepted
    bad = run("sql", "SELEC nonsense", tests)
    assert bad.verdict == Verdict.runtime_error
    assert "syntax error" in bad.tests[0].stderr
