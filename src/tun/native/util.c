/*
 * N-API helpers: errors shaped like Node's system errors, and checked argument readers, so the
 * I/O files stay about the system calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "wgts.h"

void wgts_throw_last(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  const char *msg = info && info->error_message ? info->error_message : "N-API call failed";
  napi_throw_error(env, NULL, msg);
}

napi_value wgts_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  WGTS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_value undef;
  napi_get_undefined(env, &undef);
  for (size_t i = argc; i < want; i++) argv[i] = undef;
  return undef;
}

napi_value wgts_throw_errno(napi_env env, int err, const char *syscall) {
  char msg[256];
  const char *code = uv_err_name(-err);
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, code, strerror(err));
  napi_value vmsg, vcode, error, verrno, vsys;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &vmsg) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &vcode) != napi_ok ||
      napi_create_error(env, vcode, vmsg, &error) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  napi_create_int32(env, -err, &verrno);
  napi_set_named_property(env, error, "errno", verrno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &vsys);
  napi_set_named_property(env, error, "syscall", vsys);
  napi_throw(env, error);
  return NULL;
}

napi_value wgts_throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

napi_value wgts_throw_range(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

static int expect_number(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    wgts_throw_type(env, "expected a number");
    return -1;
  }
  return 0;
}

int wgts_arg_int(napi_env env, napi_value v, int32_t *out) {
  if (expect_number(env, v)) return -1;
  napi_get_value_int32(env, v, out);
  return 0;
}

int wgts_arg_uint32(napi_env env, napi_value v, uint32_t *out) {
  if (expect_number(env, v)) return -1;
  napi_get_value_uint32(env, v, out);
  return 0;
}

int wgts_arg_bool(napi_env env, napi_value v, int *out) {
  napi_valuetype t;
  bool b = false;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) {
    *out = 0;
    return 0;
  }
  if (t != napi_boolean) {
    wgts_throw_type(env, "expected a boolean");
    return -1;
  }
  napi_get_value_bool(env, v, &b);
  *out = b;
  return 0;
}

int wgts_arg_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) {
    wgts_throw_type(env, "expected a string");
    return -1;
  }
  if (len + 1 >= size) {
    wgts_throw_range(env, "string too long");
    return -1;
  }
  return 0;
}

int wgts_arg_bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    void *ptr = NULL;
    if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok ||
        type != napi_uint8_array) {
      wgts_throw_type(env, "expected a Uint8Array");
      return -1;
    }
    *data = ptr;
    *len = length;
    return 0;
  }
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is) {
    void *ptr = NULL;
    napi_get_arraybuffer_info(env, v, &ptr, len);
    *data = ptr;
    return 0;
  }
  wgts_throw_type(env, "expected a Uint8Array or ArrayBuffer");
  return -1;
}

/* A typed array of `want` type with at least `need` elements; `what` names it in errors. */
static int arg_typed(napi_env env, napi_value v, napi_typedarray_type want, const char *what,
                     size_t need, void **data) {
  bool is = false;
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  char msg[64];
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok ||
      type != want) {
    snprintf(msg, sizeof msg, "expected a%s %s", what[0] == 'I' ? "n" : "", what);
    wgts_throw_type(env, msg);
    return -1;
  }
  if (length < need) {
    snprintf(msg, sizeof msg, "%s too short", what);
    wgts_throw_range(env, msg);
    return -1;
  }
  *data = ptr;
  return 0;
}

int wgts_arg_i32(napi_env env, napi_value v, int32_t **data, size_t need) {
  return arg_typed(env, v, napi_int32_array, "Int32Array", need, (void **)data);
}

int wgts_arg_f64(napi_env env, napi_value v, double **data, size_t need) {
  return arg_typed(env, v, napi_float64_array, "Float64Array", need, (void **)data);
}

napi_value wgts_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

napi_value wgts_fd_name(napi_env env, int fd, const char *name, const char *key, int64_t extra) {
  napi_value obj;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "fd", wgts_int(env, fd));
  if (name) {
    napi_value vname;
    napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &vname);
    napi_set_named_property(env, obj, "name", vname);
  }
  if (key) napi_set_named_property(env, obj, key, wgts_int(env, extra));
  return obj;
}
