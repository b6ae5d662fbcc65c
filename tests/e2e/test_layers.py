"""The layering docs/architecture.md promises, checked on the source tree:
which folder may include which, no SQL outside db/, no sockets outside
server/, no printing or logging but in the two programs. A change that breaks a rule fails here with the file and line, so
the map and the code cannot drift apart silently."""
import os
import re
import unittest

import fmtest

# folder -> the folders of ours it may include (its own always allowed);
# the same table as docs/architecture.md's "Folders".
MAY_USE = {
    "conf": set(),
    "mail": set(),
    "db": set(),
    "lists": {"db", "mail", "conf"},
    "web": {"lists", "db", "mail", "conf"},
    "server": {"web", "lists", "db", "mail", "conf"},
    "admin": {"lists", "db", "mail", "conf"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"', re.M)
SQL = re.compile(r"\bsqlite3_\w+\s*\(|#\s*include\s*<sqlite3\.h>")
# Writing to a FILE * the caller hands in (conf_print) is not printing of
# one's own; writing to stdout or stderr, or logging, is.
PRINT = re.compile(r"\b(?:printf|puts|perror|syslog|vprintf|"
                   r"log_(?:info|warn|warnx|debug|error|fatal|fatalx))\s*\(|"
                   r"\b(?:v?fprintf|fputs|fputc|fwrite)\s*\([^;]*\b(?:stdout|stderr)\b")
SOCKET = re.compile(r"\b(socket|connect|bind|listen|accept4?|getaddrinfo)\s*\(")


def sources(folder):
    top = os.path.join(fmtest.SOURCE_DIR, folder)
    if not os.path.isdir(top):
        return
    for name in sorted(os.listdir(top)):
        if name.endswith((".c", ".h", ".def")):
            path = os.path.join(top, name)
            with open(path, encoding="utf-8") as f:
                yield f"{folder}/{name}", f.read()


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def code_only(text):
    """text with C comments and string literals blanked (line count kept),
    so that a word in a comment is not taken for a call."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', blank, text, flags=re.S)


class Layers(unittest.TestCase):
    def test_each_folder_includes_only_what_it_may_use(self):
        bad = []
        for folder, allowed in MAY_USE.items():
            for path, text in sources(folder):
                for m in INCLUDE.finditer(text):
                    dep = m.group(1)
                    if dep != folder and dep in MAY_USE and dep not in allowed:
                        bad.append(f"{path}:{line_of(text, m.start())}: includes {dep}/ "
                                   f"({folder}/ may use: {', '.join(sorted(allowed)) or 'nothing of ours'})")
        self.assertEqual([], bad, "layering broken (docs/architecture.md, Folders)")

    def test_no_sql_outside_db(self):
        bad = []
        for folder in MAY_USE:
            if folder == "db":
                continue
            for path, text in sources(folder):
                for m in SQL.finditer(code_only(text)):
                    bad.append(f"{path}:{line_of(text, m.start())}: {m.group(0).strip()}")
        self.assertEqual([], bad, "SQLite used outside db/")

    def test_no_sockets_outside_server(self):
        bad = []
        for folder in MAY_USE:
            if folder == "server":
                continue
            for path, text in sources(folder):
                for m in SOCKET.finditer(code_only(text)):
                    bad.append(f"{path}:{line_of(text, m.start())}: {m.group(0).strip()}")
        self.assertEqual([], bad, "sockets used outside server/")

    def test_only_the_two_programs_print_or_log(self):
        bad = []
        for folder in MAY_USE:
            if folder in ("server", "admin"):
                continue
            for path, text in sources(folder):
                for m in PRINT.finditer(code_only(text)):
                    bad.append(f"{path}:{line_of(text, m.start())}: {m.group(0).strip()}")
        self.assertEqual([], bad, "printing or logging below server/ and admin/ (they "
                         "return a code and a message instead)")

    def test_the_map_names_every_folder(self):
        with open(os.path.join(fmtest.SOURCE_DIR, "docs", "architecture.md"), encoding="utf-8") as f:
            doc = f.read()
        for folder in MAY_USE:
            if os.path.isdir(os.path.join(fmtest.SOURCE_DIR, folder)):
                self.assertIn(f"`{folder}/`", doc, f"docs/architecture.md does not name {folder}/")


if __name__ == "__main__":
    unittest.main()
