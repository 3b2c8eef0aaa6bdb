//! (context, key) → message, from one table that also produces the hint bar and the `?` help,
//! so what the screen says and what the keys do cannot drift apart.

use super::Msg;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What the user asked for; `update` decides what it means in the current mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Expand,
    Collapse,
    Open,
    FocusNext,
    ToggleMark,
    MarkAllInView,
    ClearMarks,
    StartFilter,
    AcceptFilter,
    CancelFilter,
    CycleSort,
    Reload,
    RequestDelete,
    WritePlan,
    Help,
    Close,
    SwitchButton,
    Confirm,
    ToggleMongo,
    Quit,
    ForceQuit,
}

/// Which table applies: the mode plus any overlay or text entry on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyContext {
    Browse,
    Filter,
    Confirm,
    Executing,
    Done,
    Help,
    QuitPrompt,
}

#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}
const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}
const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    /// Shown in the hint bar when set.
    pub hint: Option<&'static str>,
    pub help: &'static str,
    /// Hidden (and unbound) in `--read-only`.
    pub destructive: bool,
}

const fn bind(keys: &'static [Key], action: Action, hint: Option<&'static str>, help: &'static str) -> Binding {
    Binding {
        keys,
        action,
        hint,
        help,
        destructive: false,
    }
}

const fn danger(keys: &'static [Key], action: Action, hint: Option<&'static str>, help: &'static str) -> Binding {
    Binding {
        keys,
        action,
        hint,
        help,
        destructive: true,
    }
}

static BROWSE: &[Binding] = &[
    bind(&[k('j'), code(KeyCode::Down)], Action::Down, None, "move down"),
    bind(&[k('k'), code(KeyCode::Up)], Action::Up, None, "move up"),
    bind(
        &[code(KeyCode::PageDown), ctrl('d')],
        Action::PageDown,
        None,
        "page down",
    ),
    bind(&[code(KeyCode::PageUp), ctrl('u')], Action::PageUp, None, "page up"),
    bind(&[k('g'), code(KeyCode::Home)], Action::Top, None, "first row"),
    bind(&[k('G'), code(KeyCode::End)], Action::Bottom, None, "last row"),
    bind(
        &[k('l'), code(KeyCode::Right)],
        Action::Expand,
        None,
        "expand / step in",
    ),
    bind(
        &[k('h'), code(KeyCode::Left)],
        Action::Collapse,
        None,
        "collapse / go to parent",
    ),
    bind(
        &[code(KeyCode::Enter)],
        Action::Open,
        None,
        "open category / toggle node",
    ),
    bind(
        &[code(KeyCode::Tab), code(KeyCode::BackTab)],
        Action::FocusNext,
        Some("pane"),
        "switch pane focus",
    ),
    bind(
        &[k(' ')],
        Action::ToggleMark,
        Some("mark"),
        "mark tag or subtree (its digest goes)",
    ),
    bind(
        &[k('a')],
        Action::MarkAllInView,
        Some("all"),
        "mark every candidate in view",
    ),
    bind(&[k('A'), k('u')], Action::ClearMarks, None, "clear all marks"),
    bind(
        &[k('/')],
        Action::StartFilter,
        Some("filter"),
        "regex filter (/!re inverts)",
    ),
    bind(
        &[k('s')],
        Action::CycleSort,
        Some("sort"),
        "sort: revision, bytes, age, name",
    ),
    bind(&[k('r')], Action::Reload, None, "reload every source"),
    danger(
        &[k('d')],
        Action::RequestDelete,
        Some("delete"),
        "delete the marked tags (asks first)",
    ),
    bind(
        &[k('w')],
        Action::WritePlan,
        Some("write plan"),
        "write the selection as a plan JSON file",
    ),
    bind(&[code(KeyCode::Esc)], Action::CancelFilter, None, "clear the filter"),
    bind(&[k('?')], Action::Help, Some("help"), "this help"),
    bind(&[k('q')], Action::Quit, Some("quit"), "quit"),
];

static FILTER: &[Binding] = &[
    bind(
        &[code(KeyCode::Enter)],
        Action::AcceptFilter,
        Some("keep"),
        "keep the filter",
    ),
    bind(
        &[code(KeyCode::Esc)],
        Action::CancelFilter,
        Some("clear"),
        "clear the filter",
    ),
];

static CONFIRM: &[Binding] = &[
    bind(
        &[code(KeyCode::Tab), code(KeyCode::Left), code(KeyCode::Right)],
        Action::SwitchButton,
        Some("button"),
        "switch button",
    ),
    bind(
        &[code(KeyCode::Enter)],
        Action::Confirm,
        Some("press"),
        "press the focused button",
    ),
    bind(
        &[ctrl('o')],
        Action::ToggleMongo,
        Some("mongo cleanup"),
        "toggle Mongo reference cleanup",
    ),
    bind(&[code(KeyCode::Esc)], Action::Close, Some("cancel"), "cancel"),
];

static EXECUTING: &[Binding] = &[
    bind(&[k('j'), code(KeyCode::Down)], Action::Down, None, "scroll outcomes"),
    bind(&[k('k'), code(KeyCode::Up)], Action::Up, None, "scroll outcomes"),
    bind(&[k('q')], Action::Quit, Some("quit"), "quit (asks first)"),
];

static DONE: &[Binding] = &[
    bind(&[k('j'), code(KeyCode::Down)], Action::Down, None, "scroll outcomes"),
    bind(&[k('k'), code(KeyCode::Up)], Action::Up, None, "scroll outcomes"),
    bind(
        &[code(KeyCode::Enter), code(KeyCode::Esc)],
        Action::Close,
        Some("back"),
        "back to browsing",
    ),
    bind(&[k('q')], Action::Quit, Some("quit"), "quit"),
];

static HELP: &[Binding] = &[
    bind(
        &[k('j'), code(KeyCode::Down)],
        Action::Down,
        Some("scroll"),
        "scroll down",
    ),
    bind(&[k('k'), code(KeyCode::Up)], Action::Up, None, "scroll up"),
    bind(
        &[code(KeyCode::Esc), k('?'), k('q')],
        Action::Close,
        Some("close"),
        "close help",
    ),
];

static QUIT_PROMPT: &[Binding] = &[
    bind(
        &[k('y')],
        Action::ForceQuit,
        Some("quit anyway"),
        "quit although a deletion runs",
    ),
    bind(
        &[k('n'), code(KeyCode::Esc)],
        Action::Close,
        Some("stay"),
        "keep running",
    ),
];

static GLOBAL: &[Binding] = &[bind(&[ctrl('c')], Action::Quit, None, "quit (asks if a deletion runs)")];

pub fn bindings(ctx: KeyContext) -> &'static [Binding] {
    match ctx {
        KeyContext::Browse => BROWSE,
        KeyContext::Filter => FILTER,
        KeyContext::Confirm => CONFIRM,
        KeyContext::Executing => EXECUTING,
        KeyContext::Done => DONE,
        KeyContext::Help => HELP,
        KeyContext::QuitPrompt => QUIT_PROMPT,
    }
}

/// Whether typed characters are text (filter, confirmation word) rather than commands.
fn takes_text(ctx: KeyContext) -> bool {
    matches!(ctx, KeyContext::Filter | KeyContext::Confirm)
}

fn matches(key: &Key, ev: &KeyEvent) -> bool {
    let ev_ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    key.code == ev.code && key.ctrl == ev_ctrl
}

/// The message for a key press in `ctx`, if any.
pub fn map_key(ctx: KeyContext, ev: KeyEvent, read_only: bool) -> Option<Msg> {
    let table = bindings(ctx).iter().chain(GLOBAL);
    if let Some(b) = table
        .filter(|b| !(read_only && b.destructive))
        .find(|b| b.keys.iter().any(|k| matches(k, &ev)))
    {
        return Some(Msg::Key(b.action));
    }
    if !takes_text(ctx) {
        return None;
    }
    match ev.code {
        KeyCode::Char(c) if !ev.modifiers.contains(KeyModifiers::CONTROL) => Some(Msg::Input(c)),
        KeyCode::Backspace => Some(Msg::Backspace),
        _ => None,
    }
}

/// Which way the mouse wheel turned (`--mouse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wheel {
    Up,
    Down,
}

/// The wheel does what the arrow key of the same direction does in this context (moves the
/// cursor, scrolls outcomes or help), and nothing where no arrow key is bound.
pub fn map_wheel(ctx: KeyContext, wheel: Wheel, read_only: bool) -> Option<Msg> {
    let code = match wheel {
        Wheel::Up => KeyCode::Up,
        Wheel::Down => KeyCode::Down,
    };
    map_key(ctx, KeyEvent::new(code, KeyModifiers::NONE), read_only)
}

/// `key hint` pairs for the hint bar.
pub fn hints(ctx: KeyContext, read_only: bool) -> Vec<(String, &'static str)> {
    bindings(ctx)
        .iter()
        .filter(|b| !(read_only && b.destructive))
        .filter_map(|b| b.hint.map(|h| (key_label(&b.keys[0]), h)))
        .collect()
}

/// `keys description` lines for the help screen.
pub fn help(ctx: KeyContext, read_only: bool) -> Vec<(String, &'static str)> {
    bindings(ctx)
        .iter()
        .chain(GLOBAL)
        .filter(|b| !(read_only && b.destructive))
        .map(|b| (b.keys.iter().map(key_label).collect::<Vec<_>>().join(" "), b.help))
        .collect()
}

pub fn key_label(key: &Key) -> String {
    let base = match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "S-tab".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "pgup".into(),
        KeyCode::PageDown => "pgdn".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        other => format!("{other:?}"),
    };
    if key.ctrl { format!("^{base}") } else { base }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn read_only_unbinds_and_hides_delete() {
        let d = press(KeyCode::Char('d'));
        assert_eq!(
            map_key(KeyContext::Browse, d, false),
            Some(Msg::Key(Action::RequestDelete))
        );
        assert_eq!(map_key(KeyContext::Browse, d, true), None);
        assert!(!hints(KeyContext::Browse, true).iter().any(|(_, h)| *h == "delete"));
        assert!(!help(KeyContext::Browse, true).iter().any(|(k, _)| k == "d"));
    }

    #[test]
    fn text_contexts_turn_unbound_characters_into_input() {
        assert_eq!(
            map_key(KeyContext::Filter, press(KeyCode::Char('q')), false),
            Some(Msg::Input('q'))
        );
        assert_eq!(
            map_key(KeyContext::Browse, press(KeyCode::Char('q')), false),
            Some(Msg::Key(Action::Quit))
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(
            map_key(KeyContext::Confirm, ctrl_c, false),
            Some(Msg::Key(Action::Quit))
        );
    }

    #[test]
    fn the_wheel_moves_like_the_arrow_keys_and_does_nothing_in_the_confirmation() {
        assert_eq!(
            map_wheel(KeyContext::Browse, Wheel::Down, false),
            Some(Msg::Key(Action::Down))
        );
        assert_eq!(
            map_wheel(KeyContext::Help, Wheel::Up, false),
            Some(Msg::Key(Action::Up))
        );
        assert_eq!(
            map_wheel(KeyContext::Executing, Wheel::Down, false),
            Some(Msg::Key(Action::Down))
        );
        assert_eq!(map_wheel(KeyContext::Confirm, Wheel::Down, false), None);
        assert_eq!(map_wheel(KeyContext::QuitPrompt, Wheel::Up, false), None);
    }
}
