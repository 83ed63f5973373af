use super::*;

pub static COMMANDS: &[CmdDef] = &[];
