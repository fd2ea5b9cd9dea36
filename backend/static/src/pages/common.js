// The script of pages with nothing of their own: the shared connection (alerts, toasts) only.
import '../common.js';
