//! Keyboard, paste and mouse input encoded as xterm does, for the server's PTY.
//!
//! References: xterm's "ctlseqs" (PC-style function keys, modifyOtherKeys off,
//! SGR mouse mode 1006). Sans-IO: values in, bytes out.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Key {
    Char(char),
    Enter,
    Tab,
    Backspace,
    Escape,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    /// F1 to F12.
    F(u8),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Modifiers {
    #[serde(default)]
    pub shift: bool,
    #[serde(default)]
    pub alt: bool,
    #[serde(default)]
    pub ctrl: bool,
}

impl Modifiers {
    /// xterm's modifier parameter: 1 + shift + 2·alt + 4·ctrl; `None` without modifiers.
    fn parameter(self) -> Option<u8> {
        let value = u8::from(self.shift) + 2 * u8::from(self.alt) + 4 * u8::from(self.ctrl);
        (value != 0).then_some(value + 1)
    }
}

/// The bytes a key press sends. `app_cursor` is DECCKM (the screen update's `app_cursor`).
pub fn encode_key(key: Key, mods: Modifiers, app_cursor: bool) -> Vec<u8> {
    let csi_letter = |letter: u8| -> Vec<u8> {
        match mods.parameter() {
            Some(m) => format!("\x1b[1;{m}{}", letter as char).into_bytes(),
            None if app_cursor => vec![0x1b, b'O', letter],
            None => vec![0x1b, b'[', letter],
        }
    };
    let tilde = |code: u8| -> Vec<u8> {
        match mods.parameter() {
            Some(m) => format!("\x1b[{code};{m}~").into_bytes(),
            None => format!("\x1b[{code}~").into_bytes(),
        }
    };
    match key {
        Key::Char(c) => encode_char(c, mods),
        Key::Enter => alt_prefixed(mods, vec![b'\r']),
        Key::Tab if mods.shift => b"\x1b[Z".to_vec(),
        Key::Tab => alt_prefixed(mods, vec![b'\t']),
        Key::Backspace => alt_prefixed(mods, vec![if mods.ctrl { 0x08 } else { 0x7f }]),
        Key::Escape => alt_prefixed(mods, vec![0x1b]),
        Key::Up => csi_letter(b'A'),
        Key::Down => csi_letter(b'B'),
        Key::Right => csi_letter(b'C'),
        Key::Left => csi_letter(b'D'),
        Key::Home => csi_letter(b'H'),
        Key::End => csi_letter(b'F'),
        Key::Insert => tilde(2),
        Key::Delete => tilde(3),
        Key::PageUp => tilde(5),
        Key::PageDown => tilde(6),
        Key::F(n @ 1..=4) => {
            let letter = b"PQRS"[(n - 1) as usize];
            match mods.parameter() {
                Some(m) => format!("\x1b[1;{m}{}", letter as char).into_bytes(),
                None => vec![0x1b, b'O', letter],
            }
        }
        Key::F(n @ 5..=12) => tilde([15, 17, 18, 19, 20, 21, 23, 24][(n - 5) as usize]),
        Key::F(_) => Vec::new(),
    }
}

fn alt_prefixed(mods: Modifiers, mut bytes: Vec<u8>) -> Vec<u8> {
    if mods.alt {
        bytes.insert(0, 0x1b);
    }
    bytes
}

fn encode_char(c: char, mods: Modifiers) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4);
    if mods.ctrl {
        let control = match c {
            'a'..='z' => Some(c as u8 - b'a' + 1),
            'A'..='Z' => Some(c as u8 - b'A' + 1),
            ' ' | '@' | '2' => Some(0),
            '[' | '3' => Some(0x1b),
            '\\' | '4' => Some(0x1c),
            ']' | '5' => Some(0x1d),
            '^' | '6' => Some(0x1e),
            '_' | '7' | '/' => Some(0x1f),
            '8' | '?' => Some(0x7f),
            _ => None,
        };
        if let Some(byte) = control {
            return alt_prefixed(mods, vec![byte]);
        }
    }
    let mut buffer = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
    alt_prefixed(mods, bytes)
}

/// Pasted text. With bracketed paste (mode 2004) it is wrapped in `ESC[200~ … ESC[201~`
/// and any end marker inside is removed, so a paste cannot break out and run commands.
/// Line ends become carriage returns, as typed Enter keys are.
pub fn encode_paste(text: &str, bracketed: bool) -> Vec<u8> {
    let normalised = text.replace("\r\n", "\r").replace('\n', "\r");
    if !bracketed {
        return normalised.into_bytes();
    }
    let safe = normalised.replace("\x1b[201~", "").replace("\x1b[200~", "");
    let mut bytes = Vec::with_capacity(safe.len() + 12);
    bytes.extend_from_slice(b"\x1b[200~");
    bytes.extend_from_slice(safe.as_bytes());
    bytes.extend_from_slice(b"\x1b[201~");
    bytes
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    /// Motion with no button held.
    None,
    WheelUp,
    WheelDown,
    WheelLeft,
    WheelRight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MouseAction {
    Press,
    Release,
    Motion,
}

/// A mouse event in SGR form (`ESC[<b;x;yM`, `m` on release); `col` and `row` are 0-based.
pub fn encode_mouse_sgr(
    button: MouseButton,
    action: MouseAction,
    col: u16,
    row: u16,
    mods: Modifiers,
) -> Vec<u8> {
    let mut code: u16 = match button {
        MouseButton::Left => 0,
        MouseButton::Middle => 1,
        MouseButton::Right => 2,
        MouseButton::None => 3,
        MouseButton::WheelUp => 64,
        MouseButton::WheelDown => 65,
        MouseButton::WheelLeft => 66,
        MouseButton::WheelRight => 67,
    };
    if action == MouseAction::Motion {
        code += 32;
    }
    code += 4 * u16::from(mods.shift) + 8 * u16::from(mods.alt) + 16 * u16::from(mods.ctrl);
    let end = if action == MouseAction::Release {
        'm'
    } else {
        'M'
    };
    format!(
        "\x1b[<{code};{};{}{end}",
        u32::from(col) + 1,
        u32::from(row) + 1
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Modifiers = Modifiers {
        shift: false,
        alt: false,
        ctrl: false,
    };
    const CTRL: Modifiers = Modifiers {
        shift: false,
        alt: false,
        ctrl: true,
    };
    const ALT: Modifiers = Modifiers {
        shift: false,
        alt: true,
        ctrl: false,
    };
    const SHIFT: Modifiers = Modifiers {
        shift: true,
        alt: false,
        ctrl: false,
    };
    const CTRL_SHIFT: Modifiers = Modifiers {
        shift: true,
        alt: false,
        ctrl: true,
    };

    #[test]
    fn keys_as_xterm_sends_them() {
        let cases: &[(Key, Modifiers, bool, &[u8])] = &[
            (Key::Char('a'), NONE, false, b"a"),
            (Key::Char('é'), NONE, false, "é".as_bytes()),
            (Key::Char('c'), CTRL, false, b"\x03"),
            (Key::Char('['), CTRL, false, b"\x1b"),
            (Key::Char(' '), CTRL, false, b"\x00"),
            (Key::Char('x'), ALT, false, b"\x1bx"),
            (Key::Enter, NONE, false, b"\r"),
            (Key::Tab, NONE, false, b"\t"),
            (Key::Tab, SHIFT, false, b"\x1b[Z"),
            (Key::Backspace, NONE, false, b"\x7f"),
            (Key::Backspace, CTRL, false, b"\x08"),
            (Key::Escape, NONE, false, b"\x1b"),
            (Key::Up, NONE, false, b"\x1b[A"),
            (Key::Up, NONE, true, b"\x1bOA"),
            (Key::Left, CTRL, true, b"\x1b[1;5D"),
            (Key::Right, CTRL_SHIFT, false, b"\x1b[1;6C"),
            (Key::Home, NONE, false, b"\x1b[H"),
            (Key::End, NONE, true, b"\x1bOF"),
            (Key::PageUp, NONE, false, b"\x1b[5~"),
            (Key::Delete, SHIFT, false, b"\x1b[3;2~"),
            (Key::F(1), NONE, false, b"\x1bOP"),
            (Key::F(4), ALT, false, b"\x1b[1;3S"),
            (Key::F(5), NONE, false, b"\x1b[15~"),
            (Key::F(12), CTRL, false, b"\x1b[24;5~"),
            (Key::F(13), NONE, false, b""),
        ];
        for (key, mods, app, expected) in cases {
            assert_eq!(
                encode_key(*key, *mods, *app),
                expected.to_vec(),
                "{key:?} {mods:?} app_cursor={app}"
            );
        }
    }

    #[test]
    fn pastes_cannot_break_out_of_brackets() {
        assert_eq!(encode_paste("a\nb", false), b"a\rb");
        assert_eq!(
            encode_paste("ls\x1b[201~; rm -rf ~\r\n", true),
            b"\x1b[200~ls; rm -rf ~\r\x1b[201~"
        );
    }

    #[test]
    fn sgr_mouse() {
        assert_eq!(
            encode_mouse_sgr(MouseButton::Left, MouseAction::Press, 0, 0, NONE),
            b"\x1b[<0;1;1M"
        );
        assert_eq!(
            encode_mouse_sgr(MouseButton::Left, MouseAction::Release, 9, 4, NONE),
            b"\x1b[<0;10;5m"
        );
        assert_eq!(
            encode_mouse_sgr(MouseButton::Right, MouseAction::Motion, 2, 3, CTRL),
            b"\x1b[<50;3;4M"
        );
        assert_eq!(
            encode_mouse_sgr(MouseButton::WheelDown, MouseAction::Press, 300, 0, SHIFT),
            b"\x1b[<69;301;1M"
        );
    }
}
