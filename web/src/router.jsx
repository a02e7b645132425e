// A small history-API router: the server answers every non-API path with
// index.html, so /playground/ner or /keys can be opened directly.
import { useEffect, useState } from 'preact/hooks';

const listeners = new Set();

export function navigate(path) {
  if (path === location.pathname + location.search) return;
  history.pushState(null, '', path);
  listeners.forEach((fn) => fn(path));
  window.scrollTo(0, 0);
}

window.addEventListener('popstate', () => listeners.forEach((fn) => fn(location.pathname)));

export function usePath() {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const fn = () => setPath(location.pathname);
    listeners.add(fn);
    return () => listeners.delete(fn);
  }, []);
  return path;
}

export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
