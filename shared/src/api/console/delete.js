// Deleting a destination, after confirming in the page's dialog.
import { $, showMessage, status } from './dom.js';
import { api, busy, destPath } from './api.js';

let pendingDelete = null; // destination awaiting confirmation

export function askDelete(d, b) {
  pendingDelete = { d, button: b };
  $('confirm-text').textContent = 'Delete “' + (d.name || d._id) + '”? Events stop going to its Segment source. This cannot be undone.';
  showMessage($('confirm-error'), '');
  const dialog = $('confirm-dialog');
  if (typeof dialog.showModal === 'function') dialog.showModal(); else dialog.setAttribute('open', '');
  $('cancel-delete').focus();
}

function closeDialog() {
  const dialog = $('confirm-dialog');
  if (typeof dialog.close === 'function' && dialog.open) dialog.close(); else dialog.removeAttribute('open');
}

// Resolves to whether it deleted: the caller then rebuilds the list, which this module
// does not know (destinations.js imports it).
export async function confirmDelete() {
  if (!pendingDelete) return false;
  const { d } = pendingDelete;
  showMessage($('confirm-error'), '');
  try {
    await busy($('confirm-delete'), () => api('DELETE', destPath(d)));
    pendingDelete = null;
    closeDialog();
    status('Deleted ' + (d.name || d._id) + '.');
    return true;
  } catch (e) {
    showMessage($('confirm-error'), e.message);
    return false;
  }
}

export function cancelDelete() {
  const b = pendingDelete && pendingDelete.button;
  pendingDelete = null;
  closeDialog();
  if (b) b.focus();
}

// Escape closes a modal dialog natively: forget the pending deletion then too.
export function forgetDelete() {
  pendingDelete = null;
}
