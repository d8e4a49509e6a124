// Text extraction (llmkit/retrieval/extract.h): each format on small inline documents with the
// exact text, headings and title expected; HTML entities; Korean text; gzip round trips and
// broken gzip; the UTF-8 check; format detection; and real Debian documentation when installed.
#include "llmkit/retrieval/extract.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "tests/common/error_of.h"
#include "tests/common/temp_dir.h"

namespace llmkit::retrieval {
namespace {

using testing::error_of;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string gzip_bytes(const std::string& text, const testing::TempDir& dir) {
  const std::string path = dir.file("tmp.gz");
  gzFile f = gzopen(path.c_str(), "wb");
  EXPECT_NE(f, nullptr);
  EXPECT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())),
            static_cast<int>(text.size()));
  gzclose(f);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The heading's text as it appears at its offset in the extracted text.
void expect_heading(const Extracted& e, size_t k, int level, const std::string& text) {
  ASSERT_LT(k, e.headings.size());
  EXPECT_EQ(e.headings[k].level, level) << text;
  EXPECT_EQ(e.headings[k].text, text);
  EXPECT_EQ(e.text.substr(e.headings[k].offset, text.size()), text);
}

TEST(Extract, PlainText) {
  const Extracted e =
      extract("\n\nLine one\r\nLine two  \n\n\n\nPara two\n  indented\n", Format::Text);
  EXPECT_EQ(e.text, "Line one\nLine two\n\nPara two\n  indented\n");
  EXPECT_TRUE(e.headings.empty());
  EXPECT_EQ(e.format, Format::Text);
  EXPECT_EQ(extract(" \n\t\n", Format::Text).text, "");
  // A line of only blanks separates paragraphs like an empty one.
  EXPECT_EQ(extract("a\n   \nb\n \t \n\n\n  c \n", Format::Text).text, "a\n\nb\n\n  c\n");
}

TEST(Extract, Html) {
  const std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><title>My &amp; Title</title>"
      "<style>p { color: red }</style><script>var x = \"<p>not text</p>\";</script></head>\n"
      "<body><nav><a href=\"/\">Home</a></nav>"
      "<h1>Top <a class=\"headerlink\" href=\"#top\">\xC2\xB6</a></h1>"
      "<p>Hello   <b>bold</b>\n  world.</p><!-- a <p>comment</p> -->"
      "<div role=\"navigation\">Prev <div>Next</div></div>"
      "<div class=\"toc x\"><p>Table of Contents</p><dl><dt>Sub part</dt></dl></div>"
      "<pre>  a  b\n  c</pre><h2 id='s'>Sub <em>part</em></h2>"
      "<ul><li>one</li><li>two<br/>three</li></ul><table><tr><td>x</td><td>y</td></tr></table>"
      "<p>1 < 2</p></body></html>";
  const Extracted e = extract(html, Format::Html, "t.html");
  EXPECT_EQ(e.text,
            "Top\n\nHello bold world.\n\n  a  b\n  c\n\nSub part\n\none\n\ntwo\nthree\n\nx y\n\n"
            "1 < 2\n");
  EXPECT_EQ(e.title, "My & Title");
  EXPECT_EQ(e.lang, "en");
  EXPECT_EQ(e.format, Format::Html);
  ASSERT_EQ(e.headings.size(), 2u);
  expect_heading(e, 0, 1, "Top");
  expect_heading(e, 1, 2, "Sub part");
}

TEST(Extract, HtmlUnclosedHeadingEndsAtTheNextOne) {
  const Extracted e = extract("<h1>A<h2>B</h2><p>x</p>", Format::Html);
  EXPECT_EQ(e.text, "A\n\nB\n\nx\n");
  ASSERT_EQ(e.headings.size(), 2u);
  expect_heading(e, 0, 1, "A");
  expect_heading(e, 1, 2, "B");
}

TEST(Extract, HtmlEntities) {
  const Extracted e = extract(
      "<p>Fish &amp; chips &lt;3 &mdash; caf&#233; &#x263A; &unknown; &copy; a&nbsp;b "
      "&rsquo;q&lsquo; &ldquo;d&rdquo; &hellip; &ndash; &amp;amp; AT&T &#0; &#x110000; &quot;"
      "&apos;</p>",
      Format::Html);
  EXPECT_EQ(e.text,
            "Fish & chips <3 \u2014 caf\u00E9 \u263A &unknown; \u00A9 a b \u2019q\u2018 "
            "\u201Cd\u201D \u2026 \u2013 &amp; AT&T \uFFFD \uFFFD \"'\n");
}

TEST(Extract, HtmlTitleFallsBackToH1AndKeepsKorean) {
  const Extracted e = extract(
      "<html lang=\"ko\"><body><h1>\uB370\uBE44\uC548\uC774\uB780?</h1>"
      "<p>\uB370\uBE44\uC548\uC740 \uC790\uC720 \uC6B4\uC601\uCCB4\uC81C\uC785\uB2C8\uB2E4.</p>"
      "</body></html>",
      Format::Html);
  EXPECT_EQ(e.text,
            "\uB370\uBE44\uC548\uC774\uB780?\n\n\uB370\uBE44\uC548\uC740 \uC790\uC720 "
            "\uC6B4\uC601\uCCB4\uC81C\uC785\uB2C8\uB2E4.\n");
  EXPECT_EQ(e.title, "\uB370\uBE44\uC548\uC774\uB780?");
  EXPECT_EQ(e.lang, "ko");
  expect_heading(e, 0, 1, "\uB370\uBE44\uC548\uC774\uB780?");
}

TEST(Extract, Markdown) {
  const std::string md =
      "Title Here\n"
      "==========\n"
      "\n"
      "Some *emphasis*, **strong**, `code_x` and [a link](http://x.y \"t\") and snake_case\n"
      "and a * b and ![an image](i.png) and <b>html</b> and <https://a.b/c> and \\*star\\*.\n"
      "\n"
      "## Section Two ##\n"
      "\n"
      "- item one\n"
      "- item [![badge](b.svg)](http://ci) two\n"
      "\n"
      "[ref]: http://example.com\n"
      "```c++\n"
      "int  main() { return a*b; }\n"
      "```\n"
      "\n"
      "Sub\n"
      "---\n"
      "> quoted &amp; text\n"
      "\n"
      "***\n"
      "<!-- a comment\n"
      "over lines -->\n"
      "### Three\n";
  const Extracted e = extract(md, Format::Markdown);
  EXPECT_EQ(e.text,
            "Title Here\n\n"
            "Some emphasis, strong, code_x and a link and snake_case\n"
            "and a * b and an image and html and https://a.b/c and *star*.\n\n"
            "Section Two\n\n"
            "- item one\n"
            "- item badge two\n\n"
            "int  main() { return a*b; }\n\n"
            "Sub\n\n"
            "quoted & text\n\n"
            "Three\n");
  EXPECT_EQ(e.title, "Title Here");
  ASSERT_EQ(e.headings.size(), 4u);
  expect_heading(e, 0, 1, "Title Here");
  expect_heading(e, 1, 2, "Section Two");
  expect_heading(e, 2, 2, "Sub");
  expect_heading(e, 3, 3, "Three");
}

TEST(Extract, Man) {
  const std::string man =
      ".\\\" a comment\n"
      ".TH TEST 1 \"2024\" \"x\" \"User Commands\"\n"
      ".SH NAME\n"
      "test \\- do a thing\n"
      ".SH \"SEE ALSO\"\n"
      ".SH DESCRIPTION\n"
      ".B test\n"
      "reads \\fIfiles\\fR and writes \\(em quickly.\n"
      ".PP\n"
      "Second \\(aqparagraph\\(aq, caf\\[u00E9] \\s-1SMALL\\s0.\n"
      ".TP\n"
      "\\fB\\-v\\fR, \\fB\\-\\-verbose\\fR\n"
      "say more\n"
      ".SS Details\n"
      ".nf\n"
      "line  one\n"
      "line two\n"
      ".fi\n"
      ".BR ls (1),\n"
      ".IR cat (1)\n"
      ".de XX\n"
      "macro body, not text\n"
      "..\n"
      ".unknown request\n";
  const Extracted e = extract(man, Format::Man, "test.1");
  EXPECT_EQ(e.text,
            "NAME\n\ntest - do a thing\n\nSEE ALSO\n\nDESCRIPTION\n\n"
            "test reads files and writes \u2014 quickly.\n\n"
            "Second 'paragraph', caf\u00E9 SMALL.\n\n"
            "-v, --verbose\nsay more\n\n"
            "Details\n\nline  one\nline two\nls(1), cat(1)\n");
  EXPECT_EQ(e.title, "test - do a thing");
  ASSERT_EQ(e.headings.size(), 4u);
  expect_heading(e, 0, 1, "NAME");
  expect_heading(e, 1, 1, "SEE ALSO");
  expect_heading(e, 2, 1, "DESCRIPTION");
  expect_heading(e, 3, 2, "Details");
}

TEST(Extract, ManConditionalsAndStrings) {
  const std::string man =
      ".TH X 7\n"
      ".ie n .ds Q <<\n"
      ".el .ds Q >>\n"
      ".ie \\n(.g .ds Aq \\(aq\n"
      ".el .ds Aq '\n"
      ".SH\n"
      "Heading On Next Line\n"
      ".if t .B troff only\n"
      ".if n \\{\\\n"
      "nroff \\*Qonly\\*Q it\\*(Aqs\n"
      ".\\}\n"
      ".if t \\{\\\n"
      "dropped\n"
      ".\\}\n"
      ".TS\n"
      "tab(@);\n"
      "l l.\n"
      "a@b\n"
      "_\n"
      "c\td\n"
      ".TE\n"
      "after\n";
  const Extracted e = extract(man, Format::Man);
  EXPECT_EQ(e.text, "Heading On Next Line\n\nnroff <<only<< it's\n\na@b\nc d\n\nafter\n");
  EXPECT_EQ(e.title, "X");  // no NAME section: the page name from .TH
  expect_heading(e, 0, 1, "Heading On Next Line");
}

TEST(Extract, InvalidUtf8NamesFileAndOffset) {
  const std::string msg = error_of([] { extract("ab\xFF cd", Format::Text, "f.txt"); });
  EXPECT_NE(msg.find("f.txt"), std::string::npos) << msg;
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte 2"), std::string::npos) << msg;
  // Invalid bytes in dropped HTML (a script) do not matter; in the text they do.
  EXPECT_EQ(extract("<script>\xFF</script><p>ok</p>", Format::Html).text, "ok\n");
  EXPECT_NE(error_of([] { extract("<p>x\xC3</p>", Format::Html, "p.html"); }).find("p.html"),
            std::string::npos);
}

TEST(Extract, GzipRoundTrip) {
  testing::TempDir dir;
  const std::string md = "# Caf\u00E9\n\nSome text.\n";
  write_file(dir.file("doc.md.gz"), gzip_bytes(md, dir));
  EXPECT_EQ(read_maybe_gzipped(dir.file("doc.md.gz")), md);
  const Extracted e = extract_file(dir.file("doc.md.gz"));
  EXPECT_EQ(e.format, Format::Markdown);
  EXPECT_EQ(e.text, "Caf\u00E9\n\nSome text.\n");
  EXPECT_EQ(e.title, "Caf\u00E9");
  // Gzip by magic even without the .gz name; a plain file reads as is.
  write_file(dir.file("doc.md"), gzip_bytes(md, dir));
  EXPECT_EQ(extract_file(dir.file("doc.md")).text, e.text);
  write_file(dir.file("plain.txt"), "plain\n");
  EXPECT_EQ(read_maybe_gzipped(dir.file("plain.txt")), "plain\n");
  // Concatenated gzip members are one stream.
  write_file(dir.file("two.txt.gz"), gzip_bytes("one\n", dir) + gzip_bytes("two\n", dir));
  EXPECT_EQ(read_maybe_gzipped(dir.file("two.txt.gz")), "one\ntwo\n");
}

TEST(Extract, BrokenGzipIsAnErrorNamingTheFile) {
  testing::TempDir dir;
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += std::string("line ") + std::to_string(i) + " of some text\n";
  const std::string gz = gzip_bytes(text, dir);
  write_file(dir.file("cut.txt.gz"), gz.substr(0, gz.size() / 2));
  std::string msg = error_of([&] { extract_file(dir.file("cut.txt.gz")); });
  EXPECT_NE(msg.find("cut.txt.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  std::string corrupt = gz;
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5A);
  write_file(dir.file("bad.txt.gz"), corrupt);
  msg = error_of([&] { read_maybe_gzipped(dir.file("bad.txt.gz")); });
  EXPECT_NE(msg.find("bad.txt.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
  write_file(dir.file("notgz.txt.gz"), "plain text");
  msg = error_of([&] { extract_file(dir.file("notgz.txt.gz")); });
  EXPECT_NE(msg.find("notgz.txt.gz"), std::string::npos) << msg;
  msg = error_of([&] { extract_file(dir.file("missing.txt")); });
  EXPECT_NE(msg.find("missing.txt"), std::string::npos) << msg;
}

TEST(Extract, DetectFormat) {
  EXPECT_EQ(detect_format("a/b/readme.md", ""), Format::Markdown);
  EXPECT_EQ(detect_format("NEWS.MARKDOWN.gz", ""), Format::Markdown);
  EXPECT_EQ(detect_format("x.html.gz", ""), Format::Html);
  EXPECT_EQ(detect_format("x.htm", ""), Format::Html);
  EXPECT_EQ(detect_format("x.xhtml", ""), Format::Html);
  EXPECT_EQ(detect_format("/usr/share/man/man1/ls.1.gz", ""), Format::Man);
  EXPECT_EQ(detect_format("perlfunc.3pm", ""), Format::Man);
  EXPECT_EQ(detect_format("openssl.1ssl.gz", ""), Format::Man);
  EXPECT_EQ(detect_format("x.9", ""), Format::Man);
  EXPECT_EQ(detect_format("changelog.0", ""), Format::Text);
  EXPECT_EQ(detect_format("data.2024", ""), Format::Text);
  EXPECT_EQ(detect_format("man1/readme", ""), Format::Text);
  EXPECT_EQ(detect_format("notes.txt", "hello <html>"), Format::Text);
  EXPECT_EQ(detect_format("README", "  \n<!DOCTYPE HTML PUBLIC>"), Format::Html);
  EXPECT_EQ(detect_format("page", "<HTML><body>"), Format::Html);
  EXPECT_EQ(detect_format("page.txt", "<?xml version=\"1.0\"?>\n<!DOCTYPE html>"), Format::Html);
  EXPECT_STREQ(format_name(Format::Man), "man");
  EXPECT_STREQ(format_name(Format::Markdown), "markdown");
}

TEST(Extract, RealDebianFaq) {
  const std::string path = "/usr/share/doc/debian/FAQ/basic-defs.en.html";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is not installed (package debian-faq)";
  const Extracted e = extract_file(path);
  EXPECT_EQ(e.format, Format::Html);
  EXPECT_EQ(e.title, "Chapter 1. Definitions and overview");
  bool found = false;
  for (const Heading& h : e.headings) {
    if (h.text == "1.2. What is Debian GNU/Linux?") {
      found = true;
      EXPECT_EQ(h.level, 2);
      EXPECT_EQ(e.text.substr(h.offset, h.text.size()), h.text);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_NE(e.text.find("Debian GNU/Linux is a particular distribution"), std::string::npos);
  EXPECT_EQ(e.text.find("<"), std::string::npos);  // no markup left
  EXPECT_EQ(e.text.find("Table of Contents"), std::string::npos);
  EXPECT_EQ(e.text.find("Prev"), std::string::npos);  // the navigation bars
}

TEST(Extract, RealSphinxPageDropsPermalinks) {
  const std::string path = "/usr/share/doc/python3.11/html/faq/general.html";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed (python3.11-doc)";
  const Extracted e = extract_file(path);
  ASSERT_FALSE(e.headings.empty());
  EXPECT_EQ(e.headings[0].text, "General Python FAQ");
  for (const Heading& h : e.headings) EXPECT_EQ(h.text.find("\xC2\xB6"), std::string::npos);
  EXPECT_EQ(e.text.find("Navigation"), std::string::npos);  // the sidebar and related bars
  EXPECT_EQ(e.text.find("Python Software Foundation. This page is licensed"), std::string::npos)
      << "the page footer";
  EXPECT_NE(e.text.find("What is Python?"), std::string::npos);
}

TEST(Extract, HtmlFooterAndContentinfoAreDropped) {
  const Extracted e = extract(
      "<html><body><p>Body text.</p><div class=\"footer\">&copy; Copyright</div>"
      "<footer role=\"contentinfo\">Site footer</footer><div class=\"footnote\">Kept.</div>"
      "</body></html>",
      Format::Html);
  EXPECT_EQ(e.text, "Body text.\n\nKept.\n");
}

TEST(Extract, RealManPage) {
  const std::string path = "/usr/share/man/man1/ls.1.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
  const Extracted e = extract_file(path);
  EXPECT_EQ(e.format, Format::Man);
  EXPECT_EQ(e.title, "ls - list directory contents");
  ASSERT_GE(e.headings.size(), 3u);
  EXPECT_EQ(e.headings[2].text, "DESCRIPTION");
  EXPECT_NE(e.text.find("-a, --all\ndo not ignore entries starting with ."), std::string::npos);
}

}  // namespace
}  // namespace llmkit::retrieval
