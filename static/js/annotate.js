// Annotator page: number keys press the answer buttons (1 Response A, 2 Response B, 3 Tie, 4 Both bad),
// and htmx swaps in the friendly messages that come with 400/404/409/429 answers.
document.addEventListener("keydown", function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  var target = event.target;
  if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.tagName === "SELECT" ||
                 target.isContentEditable)) return;
  var button = document.querySelector('.answers button[data-key="' + event.key + '"]');
  if (button && !button.disabled) {
    event.preventDefault();
    button.click();
  }
});
document.addEventListener("htmx:beforeSwap", function (event) {
  if ([400, 404, 409, 429].indexOf(event.detail.xhr.status) >= 0) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
