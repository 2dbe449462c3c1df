/*
 * Readiness on non-blocking fds through libuv (uv_poll_t on Node's own loop): calls a JS callback
 * (status, events) when the fd is readable, or with a negative status on error/hangup, after
 * which libuv has stopped the watcher. JavaScript then drains the fd with batched calls.
 *
 * The handle given to JavaScript is an external over a token that points at the poll; pollStop
 * clears the token, so a second pollStop (or one after the poll's memory is gone) is harmless.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "wgts.h"

typedef struct wgts_poll wgts_poll;

typedef struct {
  wgts_poll *poll;
} wgts_token;

/* Marks the externals pollStart hands out, so pollStop refuses any other napi_external (whose
 * pointer it would otherwise dereference as a token). */
static const napi_type_tag POLL_TAG = {0x8c1f4e02a7d3b915ULL, 0x5e62d0c9f1a84b37ULL};

struct wgts_poll {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;
  napi_ref resource;
  napi_async_context context;
  int in_callback;
  int stopped;
};

static void release_js(wgts_poll *p) {
  napi_env env = p->env;
  napi_async_destroy(env, p->context);
  napi_delete_reference(env, p->callback);
  napi_delete_reference(env, p->resource);
}

static void on_closed(uv_handle_t *h) { free(h->data); }

/* The environment (a worker thread) ends with the watcher still on: close it so its loop can. */
static void on_env_cleanup(void *arg) {
  wgts_poll *p = arg;
  p->stopped = 1;
  uv_poll_stop(&p->handle);
  uv_close((uv_handle_t *)&p->handle, on_closed);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  wgts_poll *p = h->data;
  if (p->stopped) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value fn, recv, argv[2], result;
  napi_get_reference_value(env, p->callback, &fn);
  napi_get_reference_value(env, p->resource, &recv);
  napi_create_int32(env, status, &argv[0]);
  napi_create_int32(env, events, &argv[1]);
  /* Until the exception is handled too: an 'uncaughtException' handler may call pollStop. */
  p->in_callback = 1;
  napi_status st = napi_make_callback(env, p->context, recv, fn, 2, argv, &result);
  if (st == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err); /* reaches process 'uncaughtException' like any callback */
  }
  p->in_callback = 0;
  if (p->stopped) release_js(p); /* pollStop ran inside the callback and left this to us */
  napi_close_handle_scope(env, scope);
}

static void token_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* pollStart(fd, callback(status, events)) -> handle */
napi_value wgts_poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!wgts_args(env, info, 2, argv)) return NULL;
  int32_t fd;
  napi_valuetype t;
  if (wgts_arg_int(env, argv[0], &fd)) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    return wgts_throw_type(env, "callback must be a function");
  }
  struct uv_loop_s *loop;
  WGTS_CHECK(env, napi_get_uv_event_loop(env, &loop));
  wgts_poll *p = calloc(1, sizeof *p);
  wgts_token *token = calloc(1, sizeof *token);
  if (!p || !token) {
    free(p);
    free(token);
    return wgts_throw_errno(env, 12 /* ENOMEM */, "pollStart");
  }
  int err = uv_poll_init(loop, &p->handle, fd);
  if (err < 0) {
    free(p);
    free(token);
    return wgts_throw_errno(env, -err, "uv_poll_init");
  }
  p->env = env;
  p->handle.data = p;
  err = uv_poll_start(&p->handle, UV_READABLE, on_poll);
  if (err < 0) {
    uv_close((uv_handle_t *)&p->handle, on_closed);
    free(token);
    return wgts_throw_errno(env, -err, "uv_poll_start");
  }
  napi_value resource, name, external;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "wgts_poll", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &p->context);
  napi_create_reference(env, argv[1], 1, &p->callback);
  napi_create_reference(env, resource, 1, &p->resource);
  token->poll = p;
  napi_add_env_cleanup_hook(env, on_env_cleanup, p);
  if (napi_create_external(env, token, token_finalize, NULL, &external) != napi_ok) {
    napi_remove_env_cleanup_hook(env, on_env_cleanup, p);
    p->stopped = 1;
    uv_poll_stop(&p->handle);
    uv_close((uv_handle_t *)&p->handle, on_closed);
    release_js(p);
    free(token);
    wgts_throw_last(env);
    return NULL;
  }
  if (napi_type_tag_object(env, external, &POLL_TAG) != napi_ok) {
    /* The external's finalizer owns the token now; the poll is stopped here. */
    token->poll = NULL;
    napi_remove_env_cleanup_hook(env, on_env_cleanup, p);
    p->stopped = 1;
    uv_poll_stop(&p->handle);
    uv_close((uv_handle_t *)&p->handle, on_closed);
    release_js(p);
    wgts_throw_last(env);
    return NULL;
  }
  return external;
}

/* pollStop(handle): stops watching; safe to call twice and from inside the callback. */
napi_value wgts_poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!wgts_args(env, info, 1, argv)) return NULL;
  wgts_token *token = NULL;
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, argv[0], &POLL_TAG, &tagged) != napi_ok || !tagged) {
    return wgts_throw_type(env, "expected a poll handle (from pollStart)");
  }
  napi_get_value_external(env, argv[0], (void **)&token);
  wgts_poll *p = token->poll;
  if (!p) return NULL;
  token->poll = NULL;
  napi_remove_env_cleanup_hook(env, on_env_cleanup, p);
  p->stopped = 1;
  uv_poll_stop(&p->handle);
  uv_close((uv_handle_t *)&p->handle, on_closed);
  if (!p->in_callback) release_js(p);
  return NULL;
}

/* foreignExternal() -> an external that is not a poll handle: tests check pollStop refuses it. */
napi_value wgts_foreign_external(napi_env env, napi_callback_info info) {
  (void)info;
  static int dummy;
  napi_value out;
  WGTS_CHECK(env, napi_create_external(env, &dummy, NULL, NULL, &out));
  return out;
}
