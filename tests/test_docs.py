"""The documentation says what the code does: every option of the code's
table is in `kimifs --help`, in the man page and in README's option table,
and nothing else is; the man page renders cleanly; `meson install` puts
the program in bin, the page in man1 and the systemd unit, which
`systemd-analyze verify` accepts."""

import re
import subprocess

from conftest import KIMIFS, REPO, kimifs_env

MAN = REPO / "doc" / "kimifs.1"


def code_options():
    """The -o options of src/opts.c's table (the key refusal aside)."""
    text = (REPO / "src" / "opts.c").read_text()
    table = text[text.index("kimifs_opts[] = {"):text.index("FUSE_OPT_END")]
    names = set(re.findall(r'KOPT\("([a-z_]+)', table))
    names |= set(re.findall(r'NUMBER_KEYS\("([a-z_]+)"\)', table))
    names |= set(re.findall(r'FUSE_OPT_KEY\("([a-z_]+)=", KEY_(?:SIZE|WINDOW)', table))
    return names


def test_the_table_has_the_options_we_expect():
    assert code_options() == {"base_url", "api_key_file", "cache_ttl", "page_size",
                              "timeout", "connect_timeout", "retries", "insecure",
                              "debug_http", "cache_dir", "cache_size", "poll_interval",
                              "completion_window", "part_size", "part_requests",
                              "retry_rounds", "events_backlog"}


def test_help_lists_exactly_the_options_of_the_table():
    r = subprocess.run([str(KIMIFS), "--help"], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    own = r.stdout[:r.stdout.index("SOURCE, as mount(8)")]
    assert set(re.findall(r"-o ([a-z_]+)", own)) == code_options()


def man_options():
    """The -o options the man page has an entry for."""
    return set(re.findall(r'^\.BI? "?\\-o ([a-z_]+)', MAN.read_text(), re.M))


def help_options():
    """Every -o option `kimifs --help` prints, libfuse's own included."""
    r = subprocess.run([str(KIMIFS), "--help"], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    return set(re.findall(r"-o ([a-z_]+)", r.stdout))


def test_the_man_page_lists_the_options_of_the_table():
    assert code_options() <= man_options()


def test_the_man_page_lists_every_option_help_prints():
    """libfuse's options (allow_root, auto_unmount, clone_fd, the thread
    counts) included, and none that --help does not know."""
    assert {"allow_root", "auto_unmount", "clone_fd", "max_threads"} <= help_options()
    assert man_options() == help_options()


def test_readme_lists_the_options_of_the_table():
    text = (REPO / "README.md").read_text()
    listed = set(re.findall(r"^\| `-o ([a-z_]+)", text, re.M))
    assert listed == code_options() | {"allow_other"}


def test_the_man_page_renders_without_a_warning():
    r = subprocess.run(["groff", "-man", "-t", "-ww", "-z", str(MAN)],
                       capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stderr) == (0, "")


def test_meson_install_puts_the_program_and_its_page(tmp_path):
    build = KIMIFS.parent
    r = subprocess.run(["meson", "install", "-C", str(build), "--destdir", str(tmp_path),
                        "--no-rebuild"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(p.endswith("bin/kimifs") for p in installed), installed
    assert any(p.endswith("share/man/man1/kimifs.1") for p in installed), installed
    assert any(p.endswith("lib/systemd/system/kimifs@.service") for p in installed), installed


def test_the_debian_changelog_has_the_version_of_meson_build():
    """The version is meson.build's; debian/changelog's newest entry is
    that version, packaged once or more (0.1.0-1)."""
    meson = re.search(r"^\s*version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text(), re.M)
    debian = re.match(r"kimifs \(([^)]+)\)", (REPO / "debian" / "changelog").read_text())
    assert debian.group(1).rsplit("-", 1)[0] == meson.group(1)


def test_the_systemd_unit_verifies(tmp_path):
    """contrib/kimifs@.service.in as meson installs it, for /mnt/kimi, with
    this build's program and the man page where man finds it."""
    unit = (KIMIFS.parent / "kimifs@.service").read_text()
    assert "@BINDIR@" not in unit
    assert re.search(r"^ExecStart=/\S+/kimifs -f ", unit, re.M)
    assert re.search(r"^ExecStop=/bin/fusermount3 -u %f$", unit, re.M)
    assert re.search(r"^After=network-online.target$", unit, re.M)
    assert re.search(r"^Restart=on-failure$", unit, re.M)
    instance = tmp_path / "kimifs@mnt-kimi.service"
    instance.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=%s" % KIMIFS, unit, flags=re.M))
    man1 = tmp_path / "man" / "man1"
    man1.mkdir(parents=True)
    (man1 / "kimifs.1").write_text(MAN.read_text())
    r = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True,
                       text=True, timeout=60, env={"MANPATH": str(tmp_path / "man"),
                                                   "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    assert (r.returncode, r.stderr.strip()) == (0, ""), r.stderr


def test_help_fits_a_terminal():
    r = subprocess.run([str(KIMIFS), "--help"], env=kimifs_env(None),
                       capture_output=True, text=True, timeout=10)
    own = r.stdout[:r.stdout.index("FUSE options")] if "FUSE options" in r.stdout else r.stdout
    assert [l for l in own.splitlines() if len(l.replace(str(KIMIFS), "kimifs")) > 80] == []


def layers_of_meson():
    """meson.build's layers: (name, [module, ...]) from the bottom up."""
    text = (REPO / "meson.build").read_text()
    start = text.index("layer_sources = [")
    block = text[start:text.index("\n]\n", start)]
    return [(name, re.findall(r"'src/([a-z_]+)\.c'", files))
            for name, files in re.findall(r"\['([a-z]+)', \[(.*?)\]\]", block, re.S)]


def test_every_module_is_in_a_layer_and_in_the_architecture():
    """Each src/*.c but main.c is in one layer of meson.build, and
    docs/architecture.md names each module in its paragraphs and each layer
    with the same modules in its table."""
    arch = (REPO / "docs" / "architecture.md").read_text()
    layers = layers_of_meson()
    placed = [m for _, mods in layers for m in mods]
    modules = sorted(p.stem for p in (REPO / "src").glob("*.c") if p.stem != "main")
    assert sorted(placed) == modules, "modules in no layer, or in two"
    for m in modules + ["main"]:
        assert "`%s.c`" % m in arch, "%s.c is not described" % m
    for name, mods in layers:
        row = re.search(r"^\| %s[^|]*\| ([^|]+) \|$" % name, arch, re.M)
        assert row, "no row for the layer %s" % name
        assert [x.strip() for x in row.group(1).split(",")] == mods, name


def test_only_the_fuse_glue_and_main_see_the_mount():
    """struct kimifs (kimifs.h) is the wiring of main and the FUSE glue;
    every module below, the tree's node types included (struct tree), takes
    the structs it uses."""
    layers = dict(layers_of_meson())
    allowed = set(layers["fuse"]) | {"main"}
    seeing = {p.stem for p in (REPO / "src").glob("*.[ch]")
              if '#include "kimifs.h"' in p.read_text()}
    assert seeing - allowed == set()
