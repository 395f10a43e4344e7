"""GNU statement expressions become immediately invoked lambdas (NVRTC has no GNU mode)."""

from kaiyuan.backends.cuda.stmt_expr import lower_statement_expressions as lower


def test_value_is_the_last_expression_statement():
    assert lower("x = ({ int t = 3; t + 1; });") == "x = [&]() { int t = 3; return t + 1; }();"


def test_nested_expressions_are_rewritten_inside_out():
    out = lower("x = ({ int a = ({ 2; }); a + ({ 3; }); });")
    assert out == "x = [&]() { int a = [&]() { return 2; }(); return a + [&]() { return 3; }(); }();"


def test_block_statements_before_the_value_are_kept():
    out = lower("y = ({ int t = 0; if (c) { t = 1; } t; });")
    assert out == "y = [&]() { int t = 0; if (c) { t = 1; } return t; }();"


def test_a_body_without_a_value_gives_a_void_lambda():
    assert lower("({ f(); if (c) { g(); } });") == "[&]() { f(); if (c) { g(); } }();"


def test_strings_comments_and_plain_blocks_are_left_alone():
    src = 'printf("({ not code })"); /* ({ nor this }) */ if (a) { b(); } int v[2] = {1, 2};'
    assert lower(src) == src


def test_macro_definitions_keep_their_line_continuations():
    src = "#define M(a) ({ int _a = (a); \\\n  _a * 2; })\n"
    assert lower(src) == "#define M(a) [&]() { int _a = (a); return \\\n  _a * 2; }()\n"
