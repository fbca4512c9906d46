// The run's reserved PostgreSQL session, refusing every statement once its connection has closed.
// postgres.js sends a statement for a closed reserved connection from a timer, where the TypeError
// cannot be caught and ends the process (porsager/postgres#1208): nothing may reach it after a close.
import type postgres from 'postgres';

/** `session`, whose statements reject with lost() once it returns an error, instead of being sent. */
export function closedGuard(session: postgres.ReservedSql, lost: () => Error | null): postgres.ReservedSql {
  const refuse = (send: () => unknown) => {
    const error = lost();
    return error ? Promise.reject(error) : send();
  };
  return new Proxy(session, {
    apply: (target, self, args) => refuse(() => Reflect.apply(target, self, args)),
    get: (target, key, receiver) => {
      const value: unknown = Reflect.get(target, key, receiver);
      if (key !== 'unsafe' || typeof value !== 'function') return value;
      return (...args: unknown[]) => refuse(() => value.apply(target, args));
    },
  });
}
