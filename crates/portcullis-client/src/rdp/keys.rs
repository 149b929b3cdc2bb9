//! Keys as RDP sends them: PC/AT set-1 scancodes with the extended (E0) flag,
//! looked up from the layout-independent key names the web platform reports
//! (`KeyboardEvent.code`: "KeyA", "ArrowLeft", "NumpadEnter", ...). The server
//! applies its own keyboard layout, as with a physical keyboard. Keys with no
//! scancode here travel as Unicode text instead.

/// `(extended, code)` for a `KeyboardEvent.code`, or `None` when unknown.
pub fn scancode(code: &str) -> Option<(bool, u8)> {
    let plain = |c: u8| Some((false, c));
    let extended = |c: u8| Some((true, c));
    if let Some(letter) = code.strip_prefix("Key") {
        let index = "QWERTYUIOPASDFGHJKLZXCVBNM"
            .find(letter)
            .filter(|_| letter.len() == 1)?;
        // Rows of the set-1 map: Q..P from 0x10, A..L from 0x1E, Z..M from 0x2C.
        let code = match index {
            0..=9 => 0x10 + index,
            10..=18 => 0x1E + (index - 10),
            _ => 0x2C + (index - 19),
        };
        return plain(u8::try_from(code).ok()?);
    }
    if let Some(digit) = code.strip_prefix("Digit") {
        let n: u8 = digit.parse().ok().filter(|n| *n <= 9)?;
        return plain(if n == 0 { 0x0B } else { 0x01 + n });
    }
    if let Some(f) = code.strip_prefix('F')
        && let Ok(n) = f.parse::<u8>()
    {
        return match n {
            1..=10 => plain(0x3A + n),
            11 => plain(0x57),
            12 => plain(0x58),
            _ => None,
        };
    }
    match code {
        "Escape" => plain(0x01),
        "Minus" => plain(0x0C),
        "Equal" => plain(0x0D),
        "Backspace" => plain(0x0E),
        "Tab" => plain(0x0F),
        "BracketLeft" => plain(0x1A),
        "BracketRight" => plain(0x1B),
        "Enter" => plain(0x1C),
        "ControlLeft" => plain(0x1D),
        "Semicolon" => plain(0x27),
        "Quote" => plain(0x28),
        "Backquote" => plain(0x29),
        "ShiftLeft" => plain(0x2A),
        "Backslash" => plain(0x2B),
        "Comma" => plain(0x33),
        "Period" => plain(0x34),
        "Slash" => plain(0x35),
        "ShiftRight" => plain(0x36),
        "NumpadMultiply" => plain(0x37),
        "AltLeft" => plain(0x38),
        "Space" => plain(0x39),
        "CapsLock" => plain(0x3A),
        "NumLock" => plain(0x45),
        "ScrollLock" => plain(0x46),
        "Numpad7" => plain(0x47),
        "Numpad8" => plain(0x48),
        "Numpad9" => plain(0x49),
        "NumpadSubtract" => plain(0x4A),
        "Numpad4" => plain(0x4B),
        "Numpad5" => plain(0x4C),
        "Numpad6" => plain(0x4D),
        "NumpadAdd" => plain(0x4E),
        "Numpad1" => plain(0x4F),
        "Numpad2" => plain(0x50),
        "Numpad3" => plain(0x51),
        "Numpad0" => plain(0x52),
        "NumpadDecimal" => plain(0x53),
        "IntlBackslash" => plain(0x56),
        "NumpadEnter" => extended(0x1C),
        "ControlRight" => extended(0x1D),
        "NumpadDivide" => extended(0x35),
        "PrintScreen" => extended(0x37),
        "AltRight" => extended(0x38),
        "Home" => extended(0x47),
        "ArrowUp" => extended(0x48),
        "PageUp" => extended(0x49),
        "ArrowLeft" => extended(0x4B),
        "ArrowRight" => extended(0x4D),
        "End" => extended(0x4F),
        "ArrowDown" => extended(0x50),
        "PageDown" => extended(0x51),
        "Insert" => extended(0x52),
        "Delete" => extended(0x53),
        "MetaLeft" => extended(0x5B),
        "MetaRight" => extended(0x5C),
        "ContextMenu" => extended(0x5D),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::scancode;

    #[test]
    fn letters_digits_and_function_keys_follow_set_one() {
        assert_eq!(scancode("KeyQ"), Some((false, 0x10)));
        assert_eq!(scancode("KeyP"), Some((false, 0x19)));
        assert_eq!(scancode("KeyA"), Some((false, 0x1E)));
        assert_eq!(scancode("KeyL"), Some((false, 0x26)));
        assert_eq!(scancode("KeyZ"), Some((false, 0x2C)));
        assert_eq!(scancode("KeyM"), Some((false, 0x32)));
        assert_eq!(scancode("Digit1"), Some((false, 0x02)));
        assert_eq!(scancode("Digit9"), Some((false, 0x0A)));
        assert_eq!(scancode("Digit0"), Some((false, 0x0B)));
        assert_eq!(scancode("F1"), Some((false, 0x3B)));
        assert_eq!(scancode("F10"), Some((false, 0x44)));
        assert_eq!(scancode("F12"), Some((false, 0x58)));
    }

    #[test]
    fn navigation_keys_carry_the_extended_flag() {
        assert_eq!(scancode("ArrowLeft"), Some((true, 0x4B)));
        assert_eq!(scancode("Delete"), Some((true, 0x53)));
        assert_eq!(scancode("NumpadEnter"), Some((true, 0x1C)));
        assert_eq!(scancode("Enter"), Some((false, 0x1C)));
        assert_eq!(scancode("ControlRight"), Some((true, 0x1D)));
    }

    #[test]
    fn unknown_names_have_no_scancode() {
        for name in [
            "", "Key", "KeyAB", "Keya", "Digit10", "F13", "F0", "Lang1", "Fn",
        ] {
            assert_eq!(scancode(name), None, "{name}");
        }
    }
}
