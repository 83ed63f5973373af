//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

use super::server::cmd;
use super::*;

pub static COMMANDS: &[CmdDef] = &[
    cmd!(
        "multi",
        1,
        "noscript loading stale fast",
        "@fast @transaction",
        Keys::None,
        multi
    ),
    cmd!(
        "exec",
        1,
        "noscript loading stale",
        "@slow @transaction",
        Keys::None,
        exec
    ),
    cmd!(
        "discard",
        1,
        "noscript loading stale fast",
        "@fast @transaction",
        Keys::None,
        discard
    ),
    cmd!(
        "watch",
        -2,
        "noscript loading stale fast",
        "@fast @transaction",
        Keys::Range(1, -1, 1),
        watch
    ),
    cmd!(
        "unwatch",
        1,
        "noscript loading stale fast",
        "@fast @transaction",
        Keys::None,
        unwatch
    ),
];

fn multi(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.client.multi.borrow().is_some() {
        return Err(err("MULTI calls can not be nested"));
    }
    *ctx.client.multi.borrow_mut() = Some(Vec::new());
    ctx.client.multi_error.set(false);
    ctx.r().ok();
    Ok(())
}

fn discard(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.client.multi.borrow().is_none() {
        return Err(err("DISCARD without MULTI"));
    }
    *ctx.client.multi.borrow_mut() = None;
    ctx.client.multi_error.set(false);
    let c = ctx.client.clone();
    ctx.node.unwatch_all(&c);
    ctx.r().ok();
    Ok(())
}

fn exec(ctx: &mut Ctx<'_>) -> CmdResult {
    let Some(queue) = ctx.client.multi.borrow_mut().take() else {
        return Err(err("EXEC without MULTI"));
    };
    let c = ctx.client.clone();
    if c.multi_error.get() {
        c.multi_error.set(false);
        ctx.node.unwatch_all(&c);
        return Err(Error::Raw(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    if c.dirty_cas.get() {
        ctx.node.unwatch_all(&c);
        ctx.r().null_array();
        return Ok(());
    }
    ctx.node.unwatch_all(&c);
    ctx.r().array(queue.len());
    for q in &queue {
        let args = q.args();
        match lookup(args.get(0)) {
            Some(info) => {
                call(ctx.node, &c, info, args, ctx.out, true);
            }
            None => ctx.r().error("ERR unknown command"),
        }
    }
    ctx.no_dirty = true;
    Ok(())
}

fn watch(ctx: &mut Ctx<'_>) -> CmdResult {
    if ctx.client.multi.borrow().is_some() {
        return Err(err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    for i in 1..ctx.argc() {
        let k: Blob = ctx.arg(i).into();
        let key = (db, k);
        if ctx.client.watched.borrow().contains(&key) {
            continue;
        }
        ctx.node
            .watched
            .entry(key.clone())
            .or_default()
            .push(ctx.client.id);
        ctx.client.watched.borrow_mut().push(key);
    }
    ctx.r().ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx<'_>) -> CmdResult {
    let c = ctx.client.clone();
    ctx.node.unwatch_all(&c);
    ctx.r().ok();
    Ok(())
}
