#!/usr/bin/env python3
"""Records the reference byte streams replayed by tests/reference.rs.

Each program runs on a real pseudo-terminal (TERM=xterm-256color) of a fixed
size; keystrokes are typed with pauses, and everything the program writes is
kept, with resizes where the script asks for them. Recording is a developer
step (the recordings are committed); the tests only replay them:

    python3 record.py            # all
    python3 record.py vim htop   # some

Format of a .rec file, one event per line:
    size COLS ROWS       the terminal size (first line, and at each resize)
    data BASE64          bytes the program wrote
"""
import base64, fcntl, os, pty, select, shutil, signal, struct, sys, termios, time

def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

def record(name, argv, steps, cols=80, rows=24, env_extra=None):
    pid, fd = pty.fork()
    if pid == 0:
        env = {"TERM": "xterm-256color", "LANG": "C.UTF-8", "HOME": "/tmp",
               "PATH": "/usr/bin:/bin", "PS1": "$ ", "LS_COLORS": ""}
        env.update(env_extra or {})
        os.execvpe(argv[0], argv, env)
    set_size(fd, cols, rows)
    events = [f"size {cols} {rows}"]
    def pump(seconds):
        end = time.time() + seconds
        while time.time() < end:
            ready, _, _ = select.select([fd], [], [], max(0, end - time.time()))
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            events.append("data " + base64.b64encode(chunk).decode())
        return True
    pump(0.8)
    for step in steps:
        if isinstance(step, tuple) and step[0] == "resize":
            set_size(fd, step[1], step[2])
            os.kill(pid, signal.SIGWINCH)
            events.append(f"size {step[1]} {step[2]}")
        else:
            os.write(fd, step.encode())
        if not pump(0.5):
            break
    pump(0.5)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)
    with open(name + ".rec", "w") as out:
        out.write("\n".join(events) + "\n")
    print(f"{name}.rec: {len(events)} events")

def main():
    wanted = set(sys.argv[1:])
    work = "/tmp/portcullis-rec"
    shutil.rmtree(work, ignore_errors=True)
    os.mkdir(work)
    for n in ["alpha.txt", "beta.sh", "gamma"]:
        open(os.path.join(work, n), "w").write("x\n")
    os.chmod(os.path.join(work, "beta.sh"), 0o755)
    os.mkdir(os.path.join(work, "delta-dir"))
    os.symlink("alpha.txt", os.path.join(work, "link"))
    text = os.path.join(work, "notes.txt")
    open(text, "w").write("".join(f"line {i} of the reference file\n" for i in range(1, 41)))
    sh = ["/bin/sh"]
    scripts = {
        "ls-color": (sh, [f"cd {work} && ls --color=always -l --time-style=+ -n | cut -c1-10,30-\r",
                          "ls --color=always -C\r", "exit\r"]),
        "vim": (["vim.tiny", "-u", "NONE", "-N", text],
                ["jjjj", "Otyped in vim \u00e9\u00e8 \u4f60\u597d", "\x1b", ":set number\r", "G"]),
        "htop": (["htop", "-d", "100"], ["", ("resize", 100, 30), ""]),
        "unicode": (sh, ["printf 'CJK: \\344\\275\\240\\345\\245\\275\\344\\270\\226\\347\\225\\214 | emoji: \\360\\237\\230\\200\\360\\237\\232\\200 | e\\314\\201 a\\314\\200\\314\\201 | wide at edge: %77s\\344\\275\\240\\n' x\r",
                         "exit\r"]),
        "colours": (sh, ["for i in $(seq 0 255); do printf '\\033[38;5;%dm%3d\\033[0m ' $i $i; done; echo\r",
                         "for r in 0 64 128 192 255; do printf '\\033[48;2;%d;100;50m  \\033[0m' $r; done; echo\r",
                         "printf '\\033[1mbold\\033[0m \\033[3mitalic\\033[0m \\033[4munder\\033[0m \\033[7minverse\\033[0m\\n'\r",
                         "exit\r"]),
        "resize": (sh, ["seq 1 30\r", ("resize", 60, 20), "echo after-shrink; stty size\r",
                        ("resize", 100, 30), "echo after-grow; stty size\r", "exit\r"]),
    }
    for name, (argv, steps) in scripts.items():
        if not wanted or name in wanted:
            record(name, argv, steps)

if __name__ == "__main__":
    main()
