import io

from mlops.ui import Reporter


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_every_line_is_prefixed():
    stream = io.StringIO()
    r = Reporter(stream)
    r.start(["a", "bb"])
    r.status("a", "building")
    r.log("bb", "Step 1/3")
    assert stream.getvalue() == "[a] building\n[bb] Step 1/3\n"


def test_on_a_terminal_status_lines_redraw_and_logs_stay_hidden():
    stream = Tty()
    r = Reporter(stream)
    r.start(["a", "bb"])
    r.status("a", "building")
    r.log("a", "Step 1/3 : FROM base")
    text = stream.getvalue()
    assert "\x1b[2F\x1b[J" in text  # moved up over the two status lines and cleared
    assert "  a   building" in text and "  bb  waiting" in text
    assert "Step 1/3" not in text
    r.show_log_tail("a")
    assert "[a] Step 1/3 : FROM base" in stream.getvalue()


def test_verbose_terminal_shows_logs():
    stream = Tty()
    r = Reporter(stream, verbose=True)
    r.start(["a"])
    r.log("a", "hello")
    assert "[a] hello" in stream.getvalue()
