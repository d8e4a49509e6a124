// Unit tests of the chat-template Jinja subset (llmkit/tokenizer/jinja_*.h, chat_template.h):
// expressions, whitespace control, loops, scopes, undefined semantics, Python printing and the
// errors (naming the line). Expected strings are what jinja2 3.1 renders with transformers'
// settings; no Python is needed here (test_chat_template_reference.cpp compares with it).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llmkit/core/error.h"
#include "llmkit/tokenizer/chat_template.h"

namespace {

using llmkit::tokenizer::ChatMessage;
using llmkit::tokenizer::ChatTemplate;
using nlohmann::json;

std::string render(const std::string& src, const json& vars = json::object()) {
  return ChatTemplate(src).apply({}, false, vars);
}

std::string error_of(const std::string& src, const json& vars = json::object()) {
  try {
    render(src, vars);
  } catch (const llmkit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JinjaExpr, Literals) {
  EXPECT_EQ(render("{{ 'a\\n\\'b\\x41\\u00e9' }}|{{ \"q\" 'r' }}"), "a\n'bAé|qr");
  EXPECT_EQ(render("{{ 1 }} {{ -2 }} {{ 1.5 }} {{ 2.0 }} {{ 1e3 }} {{ 0.1 + 0.2 }}"),
            "1 -2 1.5 2.0 1000.0 0.30000000000000004");
  EXPECT_EQ(render("{{ 1e16 }} {{ 1e15 }} {{ 0.00001 }} {{ 0.0001 }} {{ 1/3 }}"),
            "1e+16 1000000000000000.0 1e-05 0.0001 0.3333333333333333");
  EXPECT_EQ(render("{{ true }} {{ False }} {{ none }} {{ None }}"), "True False None None");
  EXPECT_EQ(render("{{ [1, 'a', none, true, 2.5] }}"), "[1, 'a', None, True, 2.5]");
  EXPECT_EQ(render("{{ {'k': [1], 'j': {'x': \"it's\"}} }}"), "{'k': [1], 'j': {'x': \"it's\"}}");
  EXPECT_EQ(render("{{ (1,) }} {{ (1, 'b') }} {{ () }}"), "(1,) (1, 'b') ()");
}

TEST(JinjaExpr, Arithmetic) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}"),
            "3 -4 1 2 3.5 1024");
  EXPECT_EQ(render("{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'ab' * 2 }} {{ [1] + [2] }}"),
            "7 9 abab [1, 2]");
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ undefined_thing }}"), "a1None");
  EXPECT_EQ(render("{{ true + 1 }} {{ 1 + 1.5 }}"), "2 2.5");
  EXPECT_NE(error_of("{{ 1 / 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(error_of("{{ 'a' + 1 }}").find("can only concatenate str"), std::string::npos);
}

TEST(JinjaExpr, LogicAndComparisons) {
  EXPECT_EQ(render("{{ 1 and 'x' }} {{ 0 and 'x' }} {{ '' or 'y' }} {{ 'a' or 'y' }} {{ not [] }}"),
            "x 0 y a True");
  EXPECT_EQ(
      render("{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 'b' > 'a' }}"),
      "True False True True True");
  EXPECT_EQ(render("{{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in [1] }}"),
            "True True True True");
  EXPECT_EQ(render("{{ 'y' if 1 else 'n' }} {{ 'y' if 0 else 'n' }}[{{ 'y' if 0 }}]"), "y n[]");
  EXPECT_EQ(render("{{ not 1 == 2 }} {{ -3|abs }} {{ -(3) }}"), "True 3 -3");
}

TEST(JinjaExpr, AttributesSubscriptsSlices) {
  const json vars = {{"m", {{"role", "user"}, {"content", "안녕 hi"}}}, {"l", {1, 2, 3, 4}}};
  EXPECT_EQ(render("{{ m.role }} {{ m['role'] }} {{ m.content[0] }} {{ m.content[-2:] }}", vars),
            "user user 안 hi");
  EXPECT_EQ(
      render(
          "{{ l[1:3] }} {{ l[::-1] }} {{ l[-1] }} {{ l[::2] }} {{ l[5:] }} {{ m.content[::-1] }}",
          vars),
      "[2, 3] [4, 3, 2, 1] 4 [1, 3] [] ih 녕안");
  EXPECT_EQ(render("[{{ m.missing }}][{{ l[10] }}]{{ m.missing is defined }}", vars), "[][]False");
  // Dicts keep insertion order (nlohmann::json objects arrive sorted by key).
  EXPECT_EQ(render("{% set d = {'z': 1, 'a': '안'} %}{% for k, v in d.items() %}{{ k }}={{ v }};{% "
                   "endfor %}"),
            "z=1;a=안;");
  EXPECT_EQ(render("{{ m.keys()|list }} {{ m.get('role') }} {{ m.get('x', 'd') }} {{ m.get('x') }}",
                   vars),
            "['content', 'role'] user d None");
}

TEST(JinjaExpr, StringMethods) {
  EXPECT_EQ(render("{{ '  a b  '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ ' a '.lstrip() }}|{{ ' a "
                   "'.rstrip() }}|"),
            "a b|a|a | a|");
  EXPECT_EQ(render("{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}"),
            "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']");
  EXPECT_EQ(render("{{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'hello "
                   "world'.title() }}"),
            "True True Hello World");
  EXPECT_EQ(render("{{ 'aXb'.upper() }} {{ 'aXb'.lower() }} {{ 'a-b'.replace('-', '+') }} {{ "
                   "'abc'.find('c') }}"),
            "AXB axb a+b 2");
  EXPECT_EQ(render("{{ '{} and {name}'.format(1, name='n') }} {{ ', '.join(['a', 'b']) }}"),
            "1 and n a, b");
}

TEST(JinjaFilters, Common) {
  EXPECT_EQ(render("{{ '  x '|trim }}|{{ 'ab'|upper }}|{{ 'AB'|lower }}|{{ 'hi there'|title }}|{{ "
                   "'hI'|capitalize }}"),
            "x|AB|ab|Hi There|Hi");
  EXPECT_EQ(render("{{ [1,2,3]|length }} {{ 'héllo'|length }} {{ [3,1]|first }} {{ [3,1]|last }} "
                   "{{ [1,2]|join('-') }}"),
            "3 5 3 1 1-2");
  EXPECT_EQ(render("{{ x|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ "
                   "none|d('n') }}"),
            "d  d None");
  EXPECT_EQ(render("{{ '3'|int + 1 }} {{ '2.5'|float }} {{ 'x'|int }} {{ 3.7|int }} {{ 2.5|round "
                   "}} {{ 3.14159|round(2) }}"),
            "4 2.5 0 3 2.0 3.14");
  EXPECT_EQ(render("{{ 'aXa'|replace('a', 'b') }} {{ [1,2,1,3]|unique|list }} {{ [3,1,2]|sort }} "
                   "{{ [1,2]|reverse|list }}"),
            "bXb [1, 2, 3] [1, 2, 3] [2, 1]");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|items|list }} {{ 'ab'|list }} {{ 1|string ~ 'x' }} {{ 'a b "
                   " c'|wordcount }}"),
            "[('b', 1), ('a', 2)] ['a', 'b'] 1x 3");
  EXPECT_EQ(render("{{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(2, true) }}"),
            "a\n  b\n\n  c|  a\n  b");
  EXPECT_EQ(
      render("{{ [1,2,3,4,5]|batch(2)|list }} {{ [1,2,3]|sum }} {{ [4,2,8]|max }} {{ 'a<b'|e }}"),
      "[[1, 2], [3, 4], [5]] 6 8 a&lt;b");
}

TEST(JinjaFilters, SelectMapAndJson) {
  const json vars = {{"ms",
                      {{{"role", "system"}, {"content", "s"}},
                       {{"role", "user"}, {"content", "u"}},
                       {{"role", "user"}, {"content", "v"}}}}};
  EXPECT_EQ(
      render("{{ ms|selectattr('role', 'equalto', 'user')|map(attribute='content')|join }}", vars),
      "uv");
  EXPECT_EQ(render("{{ ms|rejectattr('role', '==', 'user')|list|length }}", vars), "1");
  EXPECT_EQ(render("{{ [1,2,3,4]|select('even')|list }} {{ ['a','B']|map('upper')|list }}"),
            "[2, 4] ['A', 'B']");
  EXPECT_EQ(render("{{ {'a': [1, 2.0, none, true], 'é': '\"\\n'}|tojson }}"),
            "{\"a\": [1, 2.0, null, true], \"é\": \"\\\"\\n\"}");
  EXPECT_EQ(render("{{ {'a': [1]}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ]\n}");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 2}|tojson(sort_keys=true, separators=(',', ':')) }}"),
            "{\"a\":2,\"b\":1}");
  EXPECT_EQ(render("{{ '한'|tojson }} {{ '한'|tojson(ensure_ascii=true) }} {{ "
                   "'😀'|tojson(ensure_ascii=true) }}"),
            "\"한\" \"\\ud55c\" \"\\ud83d\\ude00\"");
}

TEST(JinjaTests, IsTests) {
  EXPECT_EQ(render("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 'a' is string }} "
                   "{{ 1 is number }}"),
            "False True True True True");
  EXPECT_EQ(render("{{ 1 is integer }} {{ 1.0 is float }} {{ true is boolean }} {{ true is integer "
                   "}} {{ {} is mapping }}"),
            "True True True False True");
  EXPECT_EQ(render("{{ [] is sequence }} {{ 'a' is iterable }} {{ 3 is odd }} {{ 4 is even }} {{ 9 "
                   "is divisibleby 3 }}"),
            "True True True True True");
  EXPECT_EQ(render("{{ 1 is equalto 1 }} {{ 'a' is in ['a'] }} {{ false is sameas false }} {{ 'ab' "
                   "is lower }} {{ 1 is not none }}"),
            "True True True True True");
  EXPECT_EQ(render("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 'A' is upper }}"),
            "True False True True");
}

TEST(JinjaStatements, IfForSet) {
  EXPECT_EQ(render("{% if 0 %}a{% elif 1 %}b{% else %}c{% endif %}"), "b");
  EXPECT_EQ(
      render("{% for i in [10, 20, 30] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}"
             "{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}"),
      "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;");
  EXPECT_EQ(render("{% for i in [1, 2, 3] %}{{ loop.previtem is defined }}{{ "
                   "loop.nextitem|default('-') }}{% endfor %}"),
            "False2True3True-");
  EXPECT_EQ(render("{% for i in [] %}x{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for i in range(10) if i is odd %}{{ i }}{{ loop.length }},{% endfor %}"),
            "15,35,55,75,95,");
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 "
                   "%}{% break %}{% endif %}"
                   "{{ i }}{% endfor %}"),
            "013");
  EXPECT_EQ(render("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}"), "37");
  EXPECT_EQ(render("{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}"), "aba");
}

TEST(JinjaStatements, Scopes) {
  // A set inside a loop is local to the iteration; a namespace carries state out.
  EXPECT_EQ(render("{% set x = 1 %}{% for i in range(3) %}{{ x }}{% set x = i + 10 %}{{ x }};{% "
                   "endfor %}{{ x }}"),
            "110;111;112;1");
  EXPECT_EQ(
      render("{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}"
             "{% endfor %}{{ ns.n }}"),
      "6");
  EXPECT_EQ(render("{% if true %}{% set y = 5 %}{% endif %}{{ y }}"), "5");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t %}x{{ a }}y{% endset %}[{{ t }}]"),
            "12[x1y]");
  EXPECT_EQ(render("{% set t | upper %}abc{% endset %}{{ t }}{% filter upper %}def{% endfilter %}"),
            "ABCDEF");
}

TEST(JinjaStatements, MacrosAndCall) {
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('A') }} {{ greet('B', '?') }} {{ greet(name='C', punct='.') }}"),
            "Hi A! Hi B? Hi C.");
  EXPECT_EQ(
      render("{% macro wrap() %}[{{ caller() }}]{% endmacro %}{% call wrap() %}in{% endcall %}"),
      "[in]");
  EXPECT_EQ(render("{% macro m(x) %}{{ x }}{{ g }}{% endmacro %}{% set g = 'G' %}{{ m(1) }}"),
            "1G");
}

TEST(JinjaWhitespace, TrimAndLstripBlocks) {
  // trim_blocks eats the newline after a block tag; lstrip_blocks the indentation before it.
  EXPECT_EQ(render("{% if true %}\n  a\n  {% endif %}\nb"), "  a\nb");
  EXPECT_EQ(render("x  {% if true %}y{% endif %}"), "x  y");  // not at line start: kept
  EXPECT_EQ(render("a\n    {{ 'v' }}\n"),
            "a\n    v");  // {{ }} is not lstripped; one final \n dropped
  EXPECT_EQ(render("a  {%- if true -%}  b  {%- endif -%}\n\n c"), "abc");
  EXPECT_EQ(render("a  {{- 'b' -}}  c"), "abc");
  EXPECT_EQ(render("{% if true +%}\nx\n    {%+ endif %}y"), "\nx\n    y");
  EXPECT_EQ(render("a {# comment #}\nb\n  {# c2 #}\nd"), "a b\nd");
  EXPECT_EQ(render("{% raw %}{{ not parsed }}{% endraw %}"), "{{ not parsed }}");
  EXPECT_EQ(render("a\r\nb"), "a\nb");
}

TEST(JinjaUndefined, DefaultSemantics) {
  EXPECT_EQ(render("[{{ nothing }}]{% if nothing %}t{% else %}f{% endif %}{{ nothing|length }}"
                   "{% for x in nothing %}x{% endfor %}{{ nothing == none }}"),
            "[]f0False");
  EXPECT_EQ(error_of("{{ nothing.attr }}"), "chat template line 1: 'nothing' is undefined");
  EXPECT_EQ(error_of("\n\n{{ m.a.b }}", {{"m", json::object()}}),
            "chat template line 3: 'dict object' has no attribute 'a'");
  EXPECT_EQ(error_of("{{ nothing + 1 }}"), "chat template line 1: 'nothing' is undefined");
  EXPECT_EQ(error_of("{{ nothing() }}"), "chat template line 1: 'nothing' is undefined");
}

TEST(JinjaErrors, NameTheLine) {
  EXPECT_EQ(error_of("a\nb\n{% include 'x.jinja' %}"),
            "chat template line 3: {% include %} is not supported");
  EXPECT_EQ(error_of("{% extends 'base' %}"),
            "chat template line 1: {% extends %} is not supported");
  EXPECT_EQ(error_of("\n{{ x|nosuchfilter }}"),
            "chat template line 2: filter 'nosuchfilter' is not supported");
  EXPECT_EQ(error_of("{{ x is nosuchtest }}"),
            "chat template line 1: test 'nosuchtest' is not supported");
  EXPECT_EQ(error_of("{% if x %}\nunclosed"),
            "chat template line 2: unexpected end of template, expected 'endif'");
  EXPECT_EQ(error_of("{{ 'unterminated }}"), "chat template line 1: unterminated string");
  EXPECT_EQ(error_of("{{ raise_exception('Roles must alternate') }}"),
            "chat template: Roles must alternate");
  EXPECT_EQ(error_of("{% for m in [1] %}\n{{ [1].append(2) }}{% endfor %}"),
            "chat template line 2: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(error_of("{{ 1 < 'a' }}"),
            "chat template line 1: '<' not supported between instances of 'int' and 'str'");
  EXPECT_EQ(error_of("{% for i in range(3) recursive %}{% endfor %}"),
            "chat template line 1: recursive for loops are not supported");
}

TEST(JinjaErrors, HostileTemplatesFailCleanly) {
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}")
                .find("nesting deeper"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(5000, '-').insert(0, "{{ ") + "1 }}").find("nesting deeper"),
            std::string::npos);
  std::string nested;
  for (int i = 0; i < 500; ++i) nested += "{% if true %}";
  EXPECT_NE(error_of(nested).find("nesting deeper"), std::string::npos);
  EXPECT_EQ(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            "chat template line 1: maximum recursion depth exceeded in macro 'f'");
  EXPECT_NE(error_of("{{ 'xx' * 100000000000 }}").find("repetition too large"), std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000)|length }}").find("Range too big"), std::string::npos);
}

// Found by the chat_template fuzz target (tests/fuzz/regressions/chat_template/): integers are
// 64-bit, so what overflows them is an error, not undefined behaviour; runaway loops and
// strings stop at the render's budget.
TEST(JinjaErrors, IntegerOverflowAndBudgets) {
  const std::string max = "9223372036854775807", min = "(-9223372036854775807 - 1)";
  EXPECT_EQ(error_of("{{ " + max + " + 1 }}"),
            "chat template line 1: integer overflow: 9223372036854775807 + 1 does not fit 64 bits "
            "(this subset's integers are 64-bit)");
  const std::vector<std::string> overflows = {max + " * 2",        min + " - 1", "-" + min,
                                              min + " // -1",      "2 ** 64",    min + "|abs",
                                              "3 ** 1000000000000"};
  for (const std::string& e : overflows)
    EXPECT_NE(error_of("{{ " + e + " }}").find("integer overflow"), std::string::npos) << e;
  EXPECT_EQ(render("{{ " + min + " % -1 }}|{{ (-1) ** 1000000000001 }}|{{ 1 ** " + max +
                   " }}|{{ 2 ** 62 }}|{{ -" + max + " - 1 }}"),
            "0|-1|1|4611686018427387904|-9223372036854775808");
  EXPECT_NE(error_of("{{ 1e300|int }}").find("to a 64-bit integer"), std::string::npos);
  EXPECT_NE(error_of("{{ '99999999999999999999'|int }}").find("does not fit 64 bits"),
            std::string::npos);
  EXPECT_EQ(render("{{ range(-" + max + ", " + max + ", 4611686018427387904)|length }}"), "4");
  EXPECT_EQ(render("{{ 'abc'[1::" + max + "] }}|{{ [1, 2, 3][-1::-" + max + "] }}"), "b|[3]");
  EXPECT_NE(error_of("{{ 'x'|indent(100000000000) }}").find("too large"), std::string::npos);
  EXPECT_NE(error_of("{{ [1]|batch(1000000000000, 'x')|list }}").find("too large"),
            std::string::npos);
  EXPECT_NE(error_of("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}")
                .find("too many loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
                     "{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
                .find("too large"),
            std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='x' * 60000000) %}{% for i in range(40) %}"
                     "{% set x = ns.s ~ 'y' %}{% endfor %}")
                .find("more than 256 Mi"),
            std::string::npos);
}

// Also from the fuzz target: printing, comparing and destroying values recurse, so nesting is
// bounded; a namespace may not hold a namespace or a function (a cycle would leak and print
// forever).
TEST(JinjaErrors, NestingAndNamespaceCycles) {
  EXPECT_NE(error_of("{% set ns = namespace(x=[]) %}{% for i in range(1000) %}"
                     "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}")
                .find("nested deeper than 256 levels"),
            std::string::npos);
  EXPECT_EQ(render("{% set ns = namespace(x=[]) %}{% for i in range(3) %}"
                   "{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"),
            "[[[[]]]]");
  for (const char* v : {"ns", "[ns]", "{'k': namespace()}", "range"})
    EXPECT_NE(error_of(std::string("{% set ns = namespace() %}{% set ns.x = ") + v + " %}")
                  .find("is not supported"),
              std::string::npos)
        << v;
  json deep = json::array();
  for (int i = 0; i < 300; ++i) deep = json::array({deep});
  EXPECT_NE(error_of("{{ tools }}", {{"tools", deep}}).find("JSON nested deeper than 256 levels"),
            std::string::npos);
}

TEST(ChatTemplate, ChatmlAndVariables) {
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "안녕 😀"}};
  EXPECT_EQ(ChatTemplate::chatml().apply(msgs, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n안녕 😀<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(ChatTemplate::chatml().apply(msgs, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n안녕 😀<|im_end|>\n");
  const ChatTemplate t("{{ bos_token }}{{ messages|length }}{{ eos_token }}{{ date_string }}",
                       "<s>", "</s>");
  EXPECT_EQ(t.apply(msgs, false, {{"date_string", "1 Dec"}}), "<s>2</s>1 Dec");
  EXPECT_EQ(t.source(), "{{ bos_token }}{{ messages|length }}{{ eos_token }}{{ date_string }}");
  EXPECT_THROW(t.apply(msgs, false, json::array()), llmkit::Error);
}

TEST(ChatTemplate, FromTokenizerConfig) {
  const json config = {{"chat_template", "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"},
                       {"bos_token", {{"content", "<s>"}, {"lstrip", false}}},
                       {"eos_token", "</s>"}};
  const std::vector<ChatMessage> msgs = {{"user", "x"}};
  EXPECT_EQ(llmkit::tokenizer::chat_template_from_config(config).apply(msgs, false), "<s>x</s>");
  const json listed = {
      {"chat_template",
       {{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}}},
      {"eos_token", nullptr}};
  EXPECT_EQ(llmkit::tokenizer::chat_template_from_config(listed).source(), "D");
  try {
    llmkit::tokenizer::chat_template_from_config(json::object(), "dir/tokenizer_config.json");
    FAIL() << "no error";
  } catch (const llmkit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("dir/tokenizer_config.json: no \"chat_template\""),
              std::string::npos);
  }
  EXPECT_THROW(llmkit::tokenizer::chat_template_from_config({{"chat_template", 3}}), llmkit::Error);
  EXPECT_THROW(
      llmkit::tokenizer::chat_template_from_config({{"chat_template", "x"}, {"eos_token", 1}}),
      llmkit::Error);
}

}  // namespace
