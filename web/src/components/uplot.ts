// uPlot and its stylesheet, loaded on demand by the chart component so that pages without
// charts do not pay for it.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
export default uPlot;
